"""The schedule is an engine the domains call: it knows its subjects through the registry they fill, and
imports none of their models."""
import ast
from pathlib import Path

from compliance.guidelines import load_pack
from compliance.schedule import registry

SCHEDULE = Path(__file__).resolve().parents[2] / "compliance" / "schedule"
DOMAINS = ("devices", "sterilisation", "treatments", "checklists", "stock")


def test_the_schedule_imports_no_domains_models():
    for path in SCHEDULE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in DOMAINS, f"{path.name} imports {node.module}"


def test_every_subject_type_of_the_pack_is_registered_by_its_domain(app):
    subjects = {spec["subject"] for spec in load_pack().obligations.values()}
    assert subjects <= {t.name for t in registry.registered()}
    owners = {t.name: t.wanted.__module__ for t in registry.registered()}
    assert owners["steriliser"] == "compliance.devices.obligations"
    assert owners["pack"] == "compliance.sterilisation.obligations"
