"""Hypothesis profiles for the fuzz suite.

``ci`` (the default) gives each target a fixed example budget so the whole fuzz
suite runs in under a minute; maintainers hunt longer with the same code::

    python -m pytest tests/fuzz --hypothesis-profile=long
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci")
