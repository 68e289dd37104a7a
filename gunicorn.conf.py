"""gunicorn reads this file from the directory it starts in (the repository root, as in scripts/dev and the README).

gunicorn's own limit on the request line is 4094 bytes; past it, gunicorn answers an HTML 414 itself, before the
app. 8190 (the most gunicorn allows) lets URLs up to about 8 KB reach the app, which refuses any over
MAX_URL_LENGTH (4096) with a 414 it writes itself: JSON under /api/, the error page elsewhere.
"""
limit_request_line = 8190
