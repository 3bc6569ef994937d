import pytest

import promisesim as ps


@pytest.fixture
def one_agent_model():
    """One agent failing exponentially (MTTF 100, MTTR 1) promising availability to users."""
    m = ps.Model("one agent", time_unit="h")
    server = m.agent("server", failures=ps.Failures(time_to_failure=ps.Exponential(mean=100.0),
                                                   time_to_repair=ps.Exponential(mean=1.0)))
    users = m.agent("users")
    m.promise(server, to=users, body=ps.Availability(), name="up")
    return m


@pytest.fixture(scope="session")
def schema_valid():
    """A check that a scenario file's data passes the shipped JSON Schema."""
    jsonschema = pytest.importorskip("jsonschema")
    from promisesim.model.schema import scenario_schema

    validator = jsonschema.Draft202012Validator(scenario_schema())

    def check(data):
        errors = [(list(e.absolute_path), e.message) for e in validator.iter_errors(data)]
        assert not errors, errors
        return data

    return check
