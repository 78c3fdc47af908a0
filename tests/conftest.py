"""Shared fixtures: the official SDK's virtualenv (created on first use); Hypothesis settings."""

from auth_server import auth_server_fixture  # noqa: F401
from hypothesis import HealthCheck, settings
from sdk import sdk_python_fixture  # noqa: F401
from stores import backend, backend_name, redis_prefix  # noqa: F401

# A loaded 2-core CI machine is slow at times: timing is not what the properties test, so a
# slow example or a slow draw must not fail the run. Other health checks stay on.
settings.register_profile("mcptrio", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mcptrio")
