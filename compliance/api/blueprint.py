"""The API's blueprint class: flask-smorest's, with the X-Pagination header documented as it is sent."""
from __future__ import annotations

import flask_smorest

PAGINATION_HEADER_ID = "X_PAGINATION"
# flask-smorest sends the header as JSON text (json.dumps of its pagination metadata) but documents it as an object,
# which in OpenAPI 3 means the "simple" style (total,42,page,1). This is what a client really reads.
PAGINATION_HEADER = {
    "description": (
        "The list's pagination, as JSON text in the header (parse it as JSON): an object with total (items in all "
        "pages) and total_pages, then, when there is at least one item, first_page and last_page, and, when page is "
        "not beyond the last page, page, previous_page (not on the first page) and next_page (not on the last "
        "page). All values are integers; a key that does not apply is left out."),
    "schema": {"type": "string", "example": '{"total": 42, "total_pages": 2, "first_page": 1, "last_page": 2, '
                                            '"page": 1, "next_page": 2}'},
}


class Blueprint(flask_smorest.Blueprint):
    def _document_pagination_metadata(self, spec, resp_doc):
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = PAGINATION_HEADER_ID
