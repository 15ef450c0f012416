"""Coverage-guided fuzzing of the box's config loader and first boot's secret rewriter (atheris).

The fuzzer's bytes become an appliance.toml: the one validator (appliance.configcheck) must give a
config and a list of ConfigErrors and nothing else, with no secret in any message; first boot's
rewriter (firstboot.strip_secrets) must return a file that parses and holds no secret, or refuse
with ConfigError. Any other exception, or a secret left or shown, is a finding. Run by `make fuzz`.
"""

from __future__ import annotations

import sys
import tomllib

import atheris

with atheris.instrument_imports():
    from appliance import configcheck, firstboot
    from appliance.errors import ConfigError

MARK = "Zq9SECRET"
SEEDS = (
    f'[pairing]\npassword = "{MARK}"\n',
    f'pairing = {{ password = "{MARK}", valid_minutes = 30 }}\n',
    f'pairing.password = """{MARK}\nline"""\n[relay]\ntoken = "{MARK}"\n',
    f'["wifi"]\nssid = "x"\n"password" = \'{MARK}\'\n',
)


def one(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)] if fdp.ConsumeBool() else ""
    text += fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    try:
        parsed = configcheck.parse(text)
    except ConfigError:
        return
    report = configcheck.check(parsed, text)
    for problem in report.problems:
        assert isinstance(problem, ConfigError)
        assert MARK not in str(problem), "a secret in a config error"
    for warning in report.warnings:
        assert MARK not in str(warning), "a secret in a config warning"
    try:
        stripped = firstboot.strip_secrets(text, "2026-01-01")
    except ConfigError:
        return
    after = tomllib.loads(stripped)
    assert not firstboot._given_secrets(after), "a secret left on the boot partition"


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
