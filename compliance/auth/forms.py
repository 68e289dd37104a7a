"""Sign-in and tablet forms (CSRF from Flask-WTF)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class PinForm(FlaskForm):
    pin = PasswordField(_l("PIN"), validators=[DataRequired(), Regexp(r"^[0-9]{4,6}$", message=_l("4 to 6 digits"))])


class EnrolTabletForm(FlaskForm):
    site_id = SelectField(_l("Site"), coerce=int, validators=[DataRequired()])
    name = StringField(_l("Name of this tablet"), validators=[DataRequired(), Length(max=120)])


class ConfirmForm(FlaskForm):
    """An empty form: a POST button with its CSRF token."""
