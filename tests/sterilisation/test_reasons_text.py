"""A failed load's reasons in one cell (logbook CSV, audit report): sentences joined by a space, never ".;"."""
from compliance.sterilisation.messages import reasons_text


def test_reasons_are_joined_as_sentences_without_a_semicolon_after_the_stop(app):
    with app.test_request_context():
        text = reasons_text([{"code": "steriliser_out_of_service"},
                             {"code": "temperature_low", "values": {"reached": "120.5", "required": "134"}}])
    assert text == ("The steriliser is out of service. "
                    "Temperature reached 120.5 °C; the programme needs at least 134 °C.")
    assert ".;" not in text


def test_an_unknown_code_still_ends_its_sentence(app):
    with app.test_request_context():
        assert reasons_text([{"code": "something_new"}, {"code": "steriliser_out_of_service"}]) == \
            "something_new. The steriliser is out of service."
