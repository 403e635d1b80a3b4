import pytest
from tests import test_api as t
@pytest.mark.parametrize("case", t.BAD_INPUT.values(), ids=list(t.BAD_INPUT))
async def test_peek(time_env, api, engine, case, monkeypatch):
    orig = api.request
    async def spy(*a, **k):
        r = await orig(*a, **k)
        print("\n>>", case.path, r.status_code, r.text[:400])
        return r
    monkeypatch.setattr(api, "request", spy)
    await t.test_bad_input_on_every_endpoint_is_refused_with_a_message_naming_it_and_changes_nothing(time_env, api, engine, case)
