"""The one registry type and the one options helper, and every settings dataclass using them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kdseg.errors import ConfigError
from kdseg.options import build, check_types, describe, format_options, option
from kdseg.registry import Registry


@dataclasses.dataclass(frozen=True)
class Sample:
    lr: float = option(1e-3, "learning rate")
    steps: int = option(10, "steps")
    flip: bool = option(True, "flip")
    scale: tuple[float, float] = option((0.9, 1.1), "range")
    widths: tuple[int, ...] = option((1, 2), "widths")
    clip: float | None = option(None, "clip; None = off")
    name: str = option("x", "a name")

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError("steps", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class Needs:
    variant: str = option(help="required")
    budget: str | None = option(None, "optional")


def test_build_converts_like_the_command_line_and_yaml():
    s = build(Sample, {"lr": "1e-3", "steps": 3, "scale": [1, 2], "widths": [4], "clip": 1})
    assert s.lr == 0.001 and isinstance(s.lr, float)  # YAML reads 1e-3 as a string
    assert s.scale == (1.0, 2.0) and s.widths == (4,) and s.clip == 1.0
    assert build(Sample, {"clip": None}).clip is None
    assert build(Sample, {"lr": 2}).lr == 2.0


@pytest.mark.parametrize(
    ("values", "key", "problem"),
    [
        ({"lr_typo": 1}, "p.lr_typo", "unknown thing; known: ['clip', 'flip', 'lr', "),
        ({"lr": "fast"}, "p.lr", "expected float, got str 'fast'"),
        ({"steps": 2.5}, "p.steps", "expected int, got float 2.5"),
        ({"steps": True}, "p.steps", "expected int, got bool True"),
        ({"flip": 1}, "p.flip", "expected bool, got int 1"),
        ({"scale": [1]}, "p.scale", "expected tuple[float, float], got list [1]"),
        ({"name": 3}, "p.name", "expected str, got int 3"),
        ({"steps": -1}, "p.steps", "must be >= 0"),  # the class's own check, prefixed
    ],
)
def test_the_same_errors_everywhere(values, key, problem):
    with pytest.raises(ConfigError) as err:
        build(Sample, values, prefix="p.", what="thing")
    assert err.value.key == key and err.value.problem.startswith(problem)


def test_required_fields_and_direct_construction():
    with pytest.raises(ConfigError, match=r"'variant': is required"):
        build(Needs, {})
    assert build(Needs, {"variant": "v"}).budget is None
    check_types(Sample(steps=3, lr=1))  # an int for a float is fine, as before
    with pytest.raises(ConfigError, match=r"'lr': expected float, got str"):
        check_types(Sample(lr="1e-3"))  # type: ignore[arg-type]


def test_describe_and_format():
    docs = describe(Sample)
    assert [d.name for d in docs][:2] == ["lr", "steps"] and docs[0].help == "learning rate"
    assert docs[5].type == "float | None" and docs[0].default == 1e-3
    text = format_options(docs)
    assert "lr=0.001" in text and "learning rate" in text
    assert "variant=(required)" in format_options(describe(Needs))


def _every_settings_class() -> list[tuple[str, type]]:
    from kdseg.image2d.options import TeacherOptions
    from kdseg.inputs import PROVIDERS
    from kdseg.lidar_data import AugmentConfig
    from kdseg.methods.base import list_methods, method_class
    from kdseg.models.registry import backbone_options, list_backbones
    from kdseg.teachers import TEACHERS
    from kdseg.trainer_config import TrainerConfig

    out = [("trainer", TrainerConfig), ("augment", AugmentConfig), ("teacher2d", TeacherOptions)]
    out += [(f"method {m}", method_class(m).Options) for m in list_methods()]
    out += [(f"backbone {b}", backbone_options(b)) for b in list_backbones()]
    out += [(f"input {p}", PROVIDERS.get(p).Settings) for p in PROVIDERS.names()]
    out += [(f"teacher {t}", TEACHERS.get(t).Options) for t in TEACHERS.names()]
    return out


@pytest.mark.parametrize(("what", "cls"), _every_settings_class(), ids=lambda x: str(x))
def test_every_settings_dataclass_documents_and_checks_itself(what, cls):
    """Every option of every registry entry has a help text, and unknown keys are refused with
    the same error (a new method, backbone, input or teacher kind is covered here)."""
    docs = describe(cls)
    assert all(d.help for d in docs), [d.name for d in docs if not d.help]
    with pytest.raises(ConfigError, match="unknown"):
        build(cls, {"no_such_key_anywhere": 1})


def test_registry_behaves_the_same_for_every_kind():
    reg: Registry[object] = Registry("widget", "widget")
    f = reg.register("a", lambda: 1, colour="red")
    assert reg.register("a", f) is f  # the same object again: a no-op
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a", lambda: 2)
    assert reg.get("a") is f and reg.info("a") == {"colour": "red"} and "a" in reg
    with pytest.raises(ConfigError, match=r"unknown widget 'b'; registered: \['a'\]"):
        reg.get("b")
    paths: Registry[object] = Registry("thing", "thing", allow_paths=True)
    assert paths.get("json:dumps") is json.dumps and "json:dumps" in paths.names()
    with pytest.raises(ConfigError, match="cannot import no_such_module"):
        paths.get("no_such_module:X")
    with pytest.raises(ConfigError, match="json has no 'nope'"):
        paths.get("json:nope")


def test_methods_from_the_entry_point_group(tmp_path: Path):
    """An installed package that declares `[kdseg.methods]` in its entry points (a .dist-info
    folder on sys.path, as pip leaves it) is found by name, listed and trained from."""
    site = tmp_path / "site"
    pkg = site / "outside_kd"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "kd.py").write_text((Path(__file__).parent / "kd_method.py").read_text())
    info = site / "outside_kd-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-kd\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[kdseg.methods]\nmy_logit_kd = outside_kd.kd:LogitKD\n")
    code = textwrap.dedent(
        """
        import sys
        from kdseg.methods.base import list_methods, method_class, build_method
        assert "my_logit_kd" in list_methods(), list_methods()
        cls = method_class("my_logit_kd")
        assert cls.__module__ == "outside_kd.kd" and cls.requires == {"teacher_checkpoint"}
        assert build_method("my_logit_kd", 19).teacher_spec().kind == "frozen"
        from kdseg.cli import main
        sys.exit(main(["methods", "my_logit_kd"]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("my_logit_kd: Supervised loss + T")
    assert "requires: teacher_checkpoint" in out.stdout and "temperature=2.0" in out.stdout


def test_listing_commands(capsys):
    """`kdseg methods`, `kdseg backbones`, `kdseg inputs`: names, options, defaults, help."""
    from kdseg.cli import main

    assert main(["methods", "ignet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ignet: ") and "requires: features_2d, mix_partners" in out
    assert "fd_loss='cosine'" in out and "consistency_weight=200.0" in out
    assert main(["backbones", "minkunet_tiny", "cseg_tiny"]) == 0
    out = capsys.readouterr().out
    assert "minkunet_tiny (voxel): CPU default" in out and "in_channels=4" in out
    assert "cseg_tiny (image)" in out and "widths=(16, 24, 48, 64)" in out
    assert main(["inputs"]) == 0
    out = capsys.readouterr().out
    assert "--input teacher_checkpoint=VALUE  (a finished run folder" in out
    assert "--input mix_partners=  (no value)" in out and "variant=(required)" in out
