from pathlib import Path

import pytest

from phimask.config import SettingsError, load_settings


def test_precedence_flag_env_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("listen: 127.0.0.1:1000\nworkers: 3\nlog-level: debug\n")
    env = {"PHIMASK_WORKERS": "5"}
    settings = load_settings({"listen": "127.0.0.1:2000"}, env=env, config_file=config)
    assert (settings.listen, settings.workers, settings.log_level) == ("127.0.0.1:2000", 5, "debug")
    assert load_settings({}, env={"PHIMASK_CONFIG": str(config)}).workers == 3


@pytest.mark.parametrize(
    ("flags", "env", "text", "message"),
    [
        ({"workers": "-1"}, {}, None, "flag --workers"),
        ({}, {"PHIMASK_SCANNER": "magic"}, None, "environment PHIMASK_SCANNER"),
        ({}, {}, "colour: red\n", "unknown setting 'colour'"),
        ({}, {}, "listen: [\n", "line 2"),
    ],
)
def test_errors_name_their_source(tmp_path: Path, flags: dict[str, str], env: dict[str, str],
                                  text: str | None, message: str) -> None:
    config = None
    if text is not None:
        config = tmp_path / "c.yaml"
        config.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(flags, env=env, config_file=config)
