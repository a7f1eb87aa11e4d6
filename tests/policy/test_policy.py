from pathlib import Path

import pytest

from phimask.policy import PolicyError, load_policy, load_yaml, policy_version
from phimask.policy.compile import Kind, compile_policy
from tests.conftest import fixed_keyring


def compile_text(text: str, state_dir: Path):  # type: ignore[no-untyped-def]
    return compile_policy(load_yaml(text, "p.yaml"), state_dir=state_dir, keys=fixed_keyring())


GOOD = """\
version: 1
profile: safe-harbor
on_error: reject
fields:
  - {path: patient.ssn, action: redact}
  - {path: patient.mrn, action: hmac, length: 20, prefix: "mrn:"}
  - {path: patient.phone, action: partial, keep: 4}
  - {path: patient.dob, action: generalize}
  - {path: patient.address.zip, action: zip3}
  - {path: "notes[*].text", action: scan}
  - {path: debug, action: drop}
  - {path: attributes.host, action: keep}
"""


def test_good_policy_compiles(state_dir: Path) -> None:
    plan = compile_text(GOOD, state_dir)
    assert [r.rule_id for r in plan.rules][:2] == ["patient.ssn", "patient.mrn"]
    assert plan.roots["payload"].keys["patient"].keys["ssn"].rule is plan.rules[0]
    assert plan.roots["attributes"].keys["host"].rule is plan.rules[-1]
    assert plan.rules[-2].kind is Kind.DROP
    assert plan.hints is not None and plan.unmapped_scan
    assert plan.version.startswith("sha256:")


def test_version_is_canonical(state_dir: Path) -> None:
    reordered = GOOD.replace("profile: safe-harbor\non_error: reject",
                             "on_error: reject\nprofile: safe-harbor")
    assert compile_text(reordered, state_dir).version == compile_text(GOOD, state_dir).version
    changed = GOOD.replace("length: 20", "length: 24")
    assert compile_text(changed, state_dir).version != compile_text(GOOD, state_dir).version
    assert policy_version({"a": 1}) == policy_version({"a": 1})


@pytest.mark.parametrize(
    ("edit", "line", "where", "problem"),
    [
        (("action: hmac,", "action: mask,"), 6, "fields[1].action", "unknown action 'mask'"),
        (("keep: 4", "keep: four"), 7, "fields[2].keep", "must be an integer"),
        (("keep: 4", "keep: 4, colour: red"), 7, "fields[2].colour", "unknown option"),
        (("patient.dob", "patient..dob"), 8, "fields[3].path", "empty key"),
        (("version: 1", "version: 2"), 1, "version", "must be 1"),
        (("on_error: reject", "on_error: ignore"), 3, "on_error", "must be one of"),
        (("profile: safe-harbor", "profile: safe-harbor\nbogus: 1"), 3, "bogus", "unknown key"),
        (("{path: debug, action: drop}", "{path: debug, action: drop, text: x}"), 11,
         "fields[6].text", "takes no options"),
        (("path: attributes.host", "path: patient.ssn"), 12, "fields[7].path", "same path"),
    ],
)
def test_errors_name_line_and_key(state_dir: Path, edit: tuple[str, str], line: int, where: str,
                                  problem: str) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(PolicyError) as info:
        compile_text(text, state_dir)
    assert info.value.line == line, str(info.value)
    assert info.value.where == where
    assert problem in str(info.value)
    assert str(info.value).startswith(f"p.yaml line {line}: {where}: ")


def test_duplicate_key_and_bad_yaml(state_dir: Path) -> None:
    with pytest.raises(PolicyError, match=r"line 2: profile: duplicate key"):
        compile_text("profile: none\nprofile: none\nversion: 1\n", state_dir)
    with pytest.raises(PolicyError, match=r"p.yaml line 3: "):
        compile_text("version: 1\nfields: [\n", state_dir)
    with pytest.raises(PolicyError, match="empty"):
        compile_text("", state_dir)


@pytest.mark.parametrize(("text", "where"), [
    ("integrity: {mode: always}", "integrity.mode"),
    ("integrity: {mode: require, accept: [md5]}", "integrity.accept"),
    ("integrity: {mode: require, accept: []}", "integrity.accept"),
    ("integrity: {mode: require, signature_attribute: ''}", "integrity.signature_attribute"),
    ("integrity: {mode: require, key_id_attribute: phimask.sig}", "integrity.key_id_attribute"),
    ("integrity: {mode: require, sign_output: yes please}", "integrity.sign_output"),
    ("integrity: {mode: require, strict: true}", "integrity.strict"),
    ("integrity: require", "integrity"),
])
def test_integrity_section_is_validated(state_dir: Path, text: str, where: str) -> None:
    with pytest.raises(PolicyError) as info:
        compile_text(f"version: 1\n{text}\n", state_dir)
    assert info.value.where == where and info.value.line == 2


def test_integrity_section_compiles(state_dir: Path) -> None:
    plan = compile_text("version: 1\nintegrity: {mode: require, accept: [ed25519, sha256]}\n",
                        state_dir)
    assert plan.integrity.mode == "require" and plan.integrity.accept == ("ed25519", "sha256")
    assert compile_text("version: 1\nintegrity: {mode: off}\n", state_dir).integrity.mode == "off"
    assert compile_text("version: 1\n", state_dir).integrity.mode == "off"


def test_unsafe_custom_pattern_is_a_policy_error(state_dir: Path) -> None:
    text = "version: 1\ndetectors:\n  custom:\n    - {name: x, pattern: '(a+)+b'}\n"
    with pytest.raises(PolicyError) as info:
        compile_text(text, state_dir)
    assert info.value.where == "detectors.custom[0].pattern"
    assert info.value.line == 4


def test_default_policy_and_files(state_dir: Path, tmp_path: Path) -> None:
    plan = load_policy(None, state_dir=state_dir, keys=fixed_keyring())
    assert plan.hints is not None and not plan.rules
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml", state_dir=state_dir, keys=fixed_keyring())
