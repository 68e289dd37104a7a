"""Every export, downloaded whole as a server sends it (Client.download), parsed and compared with the database:
the logbook's CSV (loads and steriliser tests), the trace and look-back CSV and PDF, the audit report's zip and PDF,
and the organisation's zip."""
import csv
import io

from compliance.extensions import db as _db
from compliance.sterilisation.models import Cycle, SteriliserTest
from tests.sterilisation.test_views import thirty_loads  # noqa: F401  (fixture)
from tests.treatments.conftest import (  # noqa: F401  (fixtures)
    NOW,
    actor,
    add_test,
    barcode,
    client_row,
    item_type,
    make_device,
    make_lot,
    make_steriliser,
    now,
    packed,
    ready_steriliser,
    start,
    sterile_pack,
    trained_nurse,
)


def csv_table(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv", response.status
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_logbook_csv_of_loads_downloads_whole_and_matches_the_database(db, client, login_as, manager,
                                                                           thirty_loads):
    login_as(manager)
    table = csv_table(client.download("/logbook?format=csv&sort=date"))
    header, body = table[0], table[1:]
    assert header[:4] == ["Started", "Time zone", "Steriliser", "Cycle number"]
    cycles = _db.session.query(Cycle).order_by(Cycle.started_at, Cycle.id).all()
    assert len(body) == len(cycles) == 30
    for row, cycle in zip(body, cycles):
        assert int(row[3]) == cycle.cycle_number
        assert row[2] == cycle.steriliser.name and row[4] == cycle.programme.name
        assert row[5] == str(cycle.temperature_c) and int(row[6]) == cycle.holding_seconds
        assert row[11] == ("pass" if cycle.is_verdict_pass else "fail") and row[13] == cycle.status
        assert row[14] == manager.name
