"""The audit report as tables: one list of columns and rows per section, written by the page, the PDF and the
CSV zip alike (as the trace's TraceTable), so that the three can't disagree. Cells keep their type (a rate
is a number) and each output formats them: "80.0 %" on paper, 0.8 in the CSV."""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable

from babel.dates import format_date, format_datetime
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ..i18n import babel_locale, number
from ..schedule.labels import kind_label
from ..sites.training import COURSES
from ..sterilisation.forms import TEST_KIND_LABELS
from ..sterilisation.messages import reasons_text as load_reasons_text
from ..sterilisation.views import csv_cell
from ..timeutil import to_local
from ..treatments.forms import ADVERSE_KIND_LABELS, SEVERITY_LABELS, SUBJECT_LABELS
from ..treatments.messages import reason_text as gate_reason_text
from ..treatments.messages import rule_title
from .services import AuditReport, RateRow

# The order of the zip's members and of the page's sections.
TABLE_NAMES = ("summary", "rates", "findings", "failed_loads", "failed_tests", "overrides", "unchecked", "recalls",
               "adverse_events", "training", "guidelines", "sent_later", "disagreements", "cycle_gaps")


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"        # text, int, rate, yesno, code, time
    on_paper: bool = True     # False: in the CSV only (machine keys, time zones)
    per_site: bool = False    # shown on paper only when the report covers several sites


@dataclass
class ReportTable:
    name: str                 # the CSV file's name without .csv, and the section's anchor
    title: str
    empty: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    links: list[dict[int, str]] = field(default_factory=list)   # per row: column index → URL of the evidence

    def add(self, row: list[Any], links: dict[int, str] | None = None) -> None:
        self.rows.append(row)
        self.links.append(links or {})

    def paper_columns(self, many_sites: bool) -> list[int]:
        return [i for i, c in enumerate(self.columns) if c.on_paper and (many_sites or not c.per_site)]


# --- cells ---------------------------------------------------------------------------------------

def local_text(value: datetime | None, tz: str) -> datetime | str:
    """The instant in the site's zone: the page and the PDF write it in the reader's locale, the CSV as ISO."""
    return to_local(value, tz) if value else ""


def paper_cell(value: Any, kind: str) -> str:
    """A cell as the page and the PDF show it."""
    if value is None or value == "":
        return "—"
    if kind == "rate":
        return f"{number(value * 100, places=1)} %"
    if kind == "yesno":
        return _("yes") if value else _("no")
    if isinstance(value, datetime):  # already in its site's zone
        return format_datetime(value, format="short", locale=babel_locale())
    if isinstance(value, date):
        return format_date(value, format="short", locale=babel_locale())
    return str(value)


def csv_value(value: Any, kind: str) -> str:
    """A cell as the CSV writes it: numbers as numbers (a rate as a fraction), text safe from spreadsheets."""
    if value is None:
        return ""
    if kind == "rate":
        return repr(round(float(value), 4))
    if kind == "yesno":
        return "yes" if value else "no"
    if isinstance(value, datetime):  # machine-readable whatever the reader's locale
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    return csv_cell(value)


# --- the tables ----------------------------------------------------------------------------------

def _site_cols() -> list[Column]:
    return [Column("site", _("Site"), per_site=True), Column("timezone", _("Time zone"), on_paper=False)]


def rate_label(row: RateRow) -> str:
    if row.source == "obligation":
        return kind_label(row.key)
    return _in_language(row.titles or {}) or row.key


def _summary(report: AuditReport, content_sha256: str) -> ReportTable:
    s = report.summary
    t = ReportTable("summary", _("Summary"), "", [
        Column("key", _("Key"), on_paper=False), Column("measure", _("Measure")), Column("value", _("Value"))])
    items = [
        ("days", _("Days in the report"), s["days"], "int"),
        ("obligation_occurrences", _("Duties that fell due"), s["obligation_occurrences"], "int"),
        ("obligation_missed", _("Duties missed (found overdue)"), s["obligation_missed"], "int"),
        ("obligation_rate", _("Duties done on time"), s["obligation_rate"], "rate"),
        ("checklist_runs", _("Checklists started"), s["checklist_runs"], "int"),
        ("checklist_incomplete", _("Checklists not completed"), s["checklist_incomplete"], "int"),
        ("checklist_rate", _("Checklists completed"), s["checklist_rate"], "rate"),
        ("findings", _("Overdue findings"), s["findings"], "int"),
        ("findings_open", _("Overdue findings still open"), s["findings_open"], "int"),
        ("failed_loads", _("Failed loads"), s["failed_loads"], "int"),
        ("failed_tests", _("Failed steriliser tests"), s["failed_tests"], "int"),
        ("failed_tests_unresolved", _("Failed tests not yet followed by a pass"), s["failed_tests_unresolved"], "int"),
        ("overrides", _("Gate overrides"), s["overrides"], "int"),
        ("unchecked_treatments", _("Treatments finished without a gate-checked needle"), s["unchecked_treatments"],
         "int"),
        ("answers_sent_later", _("Checklist answers given offline and received later"), s["answers_sent_later"],
         "int"),
        ("typed_figures_disagreeing", _("Loads whose typed figures disagree with the steriliser's record"),
         s["typed_figures_disagreeing"], "int"),
        ("cycle_numbers_missing", _("Steriliser cycles never recorded (missing cycle numbers)"),
         s["cycle_numbers_missing"], "int"),
        ("recalls", _("Recalls"), s["recalls"], "int"),
        ("recalls_open", _("Recalls still open"), s["recalls_open"], "int"),
        ("adverse_events", _("Adverse events"), s["adverse_events"], "int"),
        ("adverse_events_reportable", _("Reportable adverse events"), s["adverse_events_reportable"], "int"),
        ("training_valid", _("Courses in date"), s["training_valid"], "int"),
        ("training_expiring", _("Courses expiring soon"), s["training_expiring"], "int"),
        ("training_expired", _("Courses expired"), s["training_expired"], "int"),
        ("site_overrides", _("Site guideline overrides"), s["site_overrides"], "int"),
    ]
    for key, label, value, kind in items:
        t.add([key, label, (value, kind)])
    t.add(["content_sha256", _("Content SHA-256"), (content_sha256, "code")])
    return t


def _rates(report: AuditReport) -> ReportTable:
    t = ReportTable("rates", _("Compliance rates"), _("Nothing fell due in this period."), [
        Column("source", _("Type")), Column("key", _("Key"), on_paper=False), Column("what", _("What")),
        Column("occurrences", _("Due"), "int"), Column("missed", _("Missed"), "int"), Column("met", _("Met"), "int"),
        Column("rate", _("Rate"), "rate")])
    kinds = {"obligation": _("Obligation"), "checklist": _("Checklist")}
    for row in (*report.obligation_rates, *report.checklist_rates):
        link = (url_for("schedule.list_obligations", kind=row.key, site=report.site_id) if row.source == "obligation"
                else url_for("checklists_admin.list_runs", site=report.site_id))
        t.add([kinds[row.source], row.key, rate_label(row), row.occurrences, row.missed, row.met, row.rate], {2: link})
    return t


def _severity(severity: str) -> str:
    return {"critical": _("critical"), "major": _("major"), "minor": _("minor")}.get(severity, severity)


def _findings(report: AuditReport) -> ReportTable:
    t = ReportTable("findings", _("Overdue findings"), _("No duty was found overdue in this period."), [
        *_site_cols(), Column("kind", _("Kind"), on_paper=False), Column("what", _("What")),
        Column("subject", _("Subject")), Column("rule", _("Rule"), "code"), Column("severity", _("Severity")),
        Column("due", _("Due"), "time"), Column("found", _("Found overdue"), "time"),
        Column("resolved", _("Resolved"), "time")])
    for f in report.findings:
        t.add([f.site, f.timezone, f.kind, kind_label(f.kind), f.subject, f.rule_id, _severity(f.severity),
               local_text(f.due_at, f.timezone), local_text(f.opened_at, f.timezone),
               local_text(f.resolved_at, f.timezone) if f.resolved_at else _("still open")],
              {3: url_for("schedule.show_obligation", obligation_id=f.obligation_id)})
    return t


def _failed_loads(report: AuditReport) -> ReportTable:
    t = ReportTable("failed_loads", _("Failed loads"), _("No load failed in this period."), [
        *_site_cols(), Column("steriliser", _("Steriliser")), Column("load", _("Load"), "int"),
        Column("started", _("Started"), "time"), Column("reasons", _("Reasons")), Column("decided_by", _("Failed by")),
        Column("decided_at", _("Failed at"), "time"), Column("next_released", _("Next load released"), "time")])
    for c in report.failed_loads:
        links = {3: url_for("sterilisation.show_load", cycle_id=c.cycle_id)}
        if c.next_release_cycle_id:
            links[8] = url_for("sterilisation.show_load", cycle_id=c.next_release_cycle_id)
        t.add([c.site, c.timezone, c.steriliser, c.cycle_number, local_text(c.started_at, c.timezone),
               load_reasons_text(c.reasons), c.decided_by, local_text(c.decided_at, c.timezone),
               local_text(c.next_released_at, c.timezone) if c.next_released_at else _("none yet")], links)
    return t


def _logbook_day(site_id: int, steriliser_id: int, at: datetime, tz: str) -> str:
    day = to_local(at, tz).date().isoformat()
    return url_for("sterilisation.logbook", tab="tests", site=site_id, steriliser=steriliser_id,
                   **{"from": day, "to": day})


def _failed_tests(report: AuditReport) -> ReportTable:
    t = ReportTable("failed_tests", _("Failed steriliser tests"), _("No steriliser test failed in this period."), [
        *_site_cols(), Column("steriliser", _("Steriliser")), Column("kind", _("Kind"), on_paper=False),
        Column("test", _("Test")), Column("done", _("Done at"), "time"), Column("done_by", _("Done by")),
        Column("resolved", _("Next pass of this test"), "time")])
    for r in report.failed_tests:
        links = {4: _logbook_day(r.site_id, r.steriliser_id, r.performed_at, r.timezone)}
        if r.resolved_at:
            links[7] = _logbook_day(r.site_id, r.steriliser_id, r.resolved_at, r.timezone)
        t.add([r.site, r.timezone, r.steriliser, r.kind, str(TEST_KIND_LABELS.get(r.kind, r.kind)),
               local_text(r.performed_at, r.timezone), r.performed_by,
               local_text(r.resolved_at, r.timezone) if r.resolved_at else _("not yet")], links)
    return t


def _overrides(report: AuditReport) -> ReportTable:
    t = ReportTable("overrides", _("Gate overrides"), _("No refusal was overridden in this period."), [
        *_site_cols(), Column("at", _("When"), "time"), Column("manager", _("Manager")), Column("item", _("Item")),
        Column("rules", _("Refused by")), Column("refusal", _("Refusal")), Column("reason", _("Reason given")),
        Column("treatment", _("Treatment"), "code")])
    for o in report.overrides:
        t.add([o.site, o.timezone, local_text(o.at, o.timezone), o.manager,
               str(SUBJECT_LABELS.get(o.subject, o.subject)),
               "; ".join(f"{rule} — {rule_title(rule)}" for rule in o.rules),
               " ".join(gate_reason_text(r) for r in o.refusals), o.reason, f"#{o.treatment_id}"],
              {8: url_for("treatments.show_treatment", treatment_id=o.treatment_id)})
    return t


def _unchecked(report: AuditReport) -> ReportTable:
    t = ReportTable("unchecked", _("Treatments finished without a gate-checked needle"),
                    _("Every treatment finished in this period had its needle items checked by the gate."), [
                        *_site_cols(), Column("started", _("Started"), "time"),
                        Column("practitioner", _("Practitioner")), Column("client", _("Client"), "code"),
                        Column("treatment", _("Treatment"), "code")])
    for u in report.unchecked:
        t.add([u.site, u.timezone, local_text(u.started_at, u.timezone), u.practitioner, u.client_code,
               f"#{u.treatment_id}"], {5: url_for("treatments.show_treatment", treatment_id=u.treatment_id)})
    return t


def _in_language(texts: dict) -> str:
    return texts.get(str(get_locale())) or texts.get("en") or ""


def _sent_later(report: AuditReport) -> ReportTable:
    t = ReportTable("sent_later", _("Checklist answers given offline and received later"),
                    _("Every checklist answer in this period reached the server when it was given."), [
                        *_site_cols(), Column("checklist", _("Checklist")), Column("item", _("Question")),
                        Column("person", _("Answered by")), Column("given", _("Given"), "time"),
                        Column("received", _("Received"), "time"), Column("gap", _("Minutes between"), "int"),
                        Column("run", _("Run"), "code")])
    for a in report.sent_later:
        t.add([a.site, a.timezone, _in_language(a.checklist), _in_language(a.item), a.person,
               local_text(a.given_at, a.timezone), local_text(a.received_at, a.timezone), a.gap_minutes,
               f"#{a.run_id}"], {8: url_for("checklists_admin.show_run", run_id=a.run_id)})
    return t


def _disagreement_text(d: dict) -> str:
    from ..sterilisation.curve_views import FIGURE_UNITS, figure_names  # noqa: PLC0415
    from ..sterilisation.curve_views import short_number as n  # noqa: PLC0415

    unit, name = FIGURE_UNITS.get(d["figure"], ""), figure_names().get(d["figure"], d["figure"])
    low, high = d["machine_low"], d["machine_high"]
    machine = f"{n(low)} {unit}" if low == high else f"{n(low)}–{n(high)} {unit}"
    return _("%(figure)s typed %(typed)s, steriliser %(machine)s", figure=name, typed=f"{n(d['typed'])} {unit}",
             machine=machine)


def _disagreements(report: AuditReport) -> ReportTable:
    t = ReportTable("disagreements", _("Typed figures that disagree with the steriliser's record"),
                    _("No figure typed in this period disagrees with a record imported from the steriliser."), [
                        *_site_cols(), Column("steriliser", _("Steriliser")), Column("load", _("Load"), "int"),
                        Column("started", _("Started"), "time"), Column("figures", _("Figures")),
                        Column("record", _("Steriliser record"), "code")])
    for d in report.disagreements:
        links = {3: url_for("sterilisation.show_load", cycle_id=d.cycle_id)}
        if d.curve_id:
            links[6] = url_for("sterilisation.show_curve", curve_id=d.curve_id)
        t.add([d.site, d.timezone, d.steriliser, d.cycle_number, local_text(d.started_at, d.timezone),
               "; ".join(_disagreement_text(f) for f in d.figures), f"#{d.curve_id}" if d.curve_id else ""], links)
    return t


def _cycle_gaps(report: AuditReport) -> ReportTable:
    t = ReportTable("cycle_gaps", _("Steriliser cycles never recorded"),
                    _("No cycle number is missing between the records imported from the sterilisers."), [
                        *_site_cols(), Column("steriliser", _("Steriliser")), Column("first", _("First missing"), "int"),
                        Column("last", _("Last missing"), "int"), Column("count", _("Cycles"), "int"),
                        Column("after", _("Before the cycle of"), "time")])
    for g in report.cycle_gaps:
        t.add([g.site, g.timezone, g.steriliser, g.first, g.last, g.count, local_text(g.after_at, g.timezone)],
              {2: url_for("sterilisation.logbook", steriliser=g.steriliser_id, site=g.site_id)})
    return t


def _recalls(report: AuditReport) -> ReportTable:
    t = ReportTable("recalls", _("Recalls"), _("No recall was open in this period."), [
        *_site_cols(), Column("steriliser", _("Steriliser")), Column("opened", _("Opened"), "time"),
        Column("closed", _("Closed"), "time"), Column("loads", _("Loads"), "int"),
        Column("clients_reached", _("Clients reached"), "int"), Column("contacted", _("Clients contacted"), "time")])
    for r in report.recalls:
        t.add([r.site, r.timezone, r.steriliser, local_text(r.opened_at, r.timezone),
               local_text(r.closed_at, r.timezone) if r.closed_at else _("still open"), r.loads, r.clients_reached,
               local_text(r.clients_contacted_at, r.timezone) if r.clients_contacted_at else _("not yet")],
              {3: url_for("sterilisation.show_recall", recall_id=r.recall_id)})
    return t


def _adverse_events(report: AuditReport) -> ReportTable:
    t = ReportTable("adverse_events", _("Adverse events"), _("No adverse event began in this period."), [
        *_site_cols(), Column("onset", _("Began"), "time"), Column("kind", _("Kind"), on_paper=False),
        Column("what", _("What")), Column("severity", _("Severity")), Column("reportable", _("Reportable"), "yesno"),
        Column("client", _("Client code"), "code"), Column("treatment", _("Treatment"), "code")])
    for e in report.adverse_events:
        t.add([e.site, e.timezone, local_text(e.onset_at, e.timezone), e.kind,
               str(ADVERSE_KIND_LABELS.get(e.kind, e.kind)), str(SEVERITY_LABELS.get(e.severity, e.severity)),
               e.is_reportable, e.client_code, f"#{e.treatment_id}"],
              {8: url_for("treatments.show_treatment", treatment_id=e.treatment_id)})
    return t


def _training(report: AuditReport) -> ReportTable:
    words = {"valid": _("in date"), "expiring": _("expiring soon"), "expired": _("expired")}
    t = ReportTable("training", _("Training now"), _("No training is recorded for the people of these sites."), [
        *_site_cols()[:1], Column("person", _("Person")), Column("course_key", _("Course key"), on_paper=False),
        Column("course", _("Course")), Column("expires", _("Expires"), "time"),
        Column("status_key", _("Status key"), on_paper=False),
        Column("status", _("Status"))])
    for r in report.training:
        t.add([r.site, r.person, r.course, str(COURSES.get(r.course, r.course)),
               r.expires_on if r.expires_on else _("never"), r.status, words.get(r.status, r.status)],
              {1: url_for("sites.show_user", user_id=r.user_id)})
    return t


def _guidelines(report: AuditReport) -> ReportTable:
    t = ReportTable("guidelines", _("Guideline pack and site overrides"), "", [
        *_site_cols(), Column("pack", _("Pack")), Column("version", _("Version"), "code"),
        Column("rule", _("Rule"), "code"), Column("key", _("Number"), "code"), Column("value", _("Value"), "code"),
        Column("reason", _("Reason")), Column("set_by", _("Set by")), Column("set_at", _("Set at"), "time"),
        Column("replaced_at", _("Replaced at"), "time")])
    for g in report.guidelines:
        if not g.rule_id:
            t.add([g.site, g.timezone, g.pack, g.version, "", "", None, _("The site uses the pack's numbers."), "",
                   "", ""])
            continue
        t.add([g.site, g.timezone, g.pack, g.version, g.rule_id, g.key, _value_text(g.value), g.reason, g.set_by,
               local_text(g.set_at, g.timezone), local_text(g.replaced_at, g.timezone)])
    return t


def _value_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def audit_tables(report: AuditReport, content_sha256: str) -> list[ReportTable]:
    """Every section of the report, in TABLE_NAMES order."""
    tables = [_summary(report, content_sha256), _rates(report), _findings(report), _failed_loads(report),
              _failed_tests(report), _overrides(report), _unchecked(report), _recalls(report), _adverse_events(report),
              _training(report), _guidelines(report), _sent_later(report), _disagreements(report),
              _cycle_gaps(report)]
    assert tuple(t.name for t in tables) == TABLE_NAMES
    return tables


# --- outputs -------------------------------------------------------------------------------------

def _cell(value: Any, column: Column) -> tuple[Any, str]:
    """(value, kind): the summary's value column carries its own kind."""
    if isinstance(value, tuple):
        return value
    return value, column.kind


def paper_rows(table: ReportTable, many_sites: bool) -> list[list[tuple[str, str | None, str]]]:
    """The page's and the PDF's rows: (text, link or None, kind) for each shown column."""
    shown = table.paper_columns(many_sites)
    out = []
    for row, links in zip(table.rows, table.links):
        cells = []
        for i in shown:
            value, kind = _cell(row[i], table.columns[i])
            cells.append((paper_cell(value, kind), links.get(i), kind))
        out.append(cells)
    return out


def csv_bytes(table: ReportTable) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.title for c in table.columns])
    for row in table.rows:
        writer.writerow([csv_value(*_cell(value, column)) for value, column in zip(row, table.columns)])
    return buffer.getvalue().encode("utf-8")


# A fixed time for every member: the same report gives the same zip bytes.
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def zip_bytes(tables: Iterable[ReportTable]) -> bytes:
    """One CSV per table (UTF-8, header row first)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in tables:
            info = zipfile.ZipInfo(f"{table.name}.csv", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, csv_bytes(table))
    return out.getvalue()
