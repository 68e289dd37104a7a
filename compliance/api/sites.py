"""Sites, rooms, people and training over JSON (filled in by the API work)."""
from flask_smorest import Blueprint

blp = Blueprint("api_sites", __name__, url_prefix="/api/v1", description="Sites, rooms, people and training")
