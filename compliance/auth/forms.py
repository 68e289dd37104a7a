"""Sign-in and tablet forms (CSRF from Flask-WTF)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from .. import validation
from ..errors import Invalid


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


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])

    def validate_email(self, field):
        """A mistyped address is said at once (no link could reach it), in the reader's words (validation.email)."""
        try:
            validation.email({"email": field.data})
        except Invalid as exc:
            raise ValidationError(exc.message) from None


class ChoosePasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)],
                             description=_l("At least 10 characters. A few words you can remember are best."),
                             render_kw={"autocomplete": "new-password"})
    password_again = PasswordField(_l("The same password again"), validators=[DataRequired(), Length(max=200)],
                                   render_kw={"autocomplete": "new-password"})


_PIN_INPUT = {"inputmode": "numeric", "maxlength": 6, "autocomplete": "off", "pattern": "[0-9]*"}


class ChangePinForm(FlaskForm):
    old_pin = PasswordField(_l("Your PIN now"), validators=[DataRequired()], render_kw=_PIN_INPUT)
    new_pin = PasswordField(_l("New PIN"), validators=[DataRequired()], description=_l("4 to 6 digits."),
                            render_kw=_PIN_INPUT)
    new_pin_again = PasswordField(_l("The new PIN again"), validators=[DataRequired()], render_kw=_PIN_INPUT)
