"""The training courses a record can name. Which procedure needs which course is guideline data (issue 4/6)."""
from flask_babel import lazy_gettext as _l

COURSES = {
    "infection_control": _l("Infection prevention and control"),
    "bloodborne_pathogens": _l("Bloodborne pathogens"),
    "microneedling": _l("Micro-needling practice"),
    "sterilisation": _l("Decontamination and sterilisation"),
    "first_aid": _l("First aid"),
}
