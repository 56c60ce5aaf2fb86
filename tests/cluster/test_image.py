"""Which debug image: --image > $KUBECTL_WHOSE_IMAGE > ~/.config/kubectl-whose/config.yaml > the default."""
import pytest

from kubectl_whose.cluster.image import DEFAULT_IMAGE, resolve_image
from kubectl_whose.errors import ExitCode, WhoseError


@pytest.fixture
def config_home(tmp_path):
    (tmp_path / "kubectl-whose").mkdir()
    (tmp_path / "kubectl-whose" / "config.yaml").write_text("image: registry.local/netshoot:v0.13\n")
    return tmp_path


@pytest.mark.parametrize("flag,env_image,with_file,want", [
    ("my/img:1", "env/img:2", True, "my/img:1"),
    (None, "env/img:2", True, "env/img:2"),
    (None, None, True, "registry.local/netshoot:v0.13"),
    (None, None, False, DEFAULT_IMAGE),
], ids=["flag", "env", "config-file", "default"])
def test_precedence(config_home, tmp_path, flag, env_image, with_file, want):
    env = {"XDG_CONFIG_HOME": str(config_home if with_file else tmp_path / "nothing")}
    if env_image:
        env["KUBECTL_WHOSE_IMAGE"] = env_image
    assert resolve_image(flag, env) == want


def test_default_is_a_pinned_public_tag():
    assert DEFAULT_IMAGE == "nicolaka/netshoot:v0.13"


def test_broken_config_file_is_a_config_error(tmp_path):
    (tmp_path / "kubectl-whose").mkdir()
    (tmp_path / "kubectl-whose" / "config.yaml").write_text("image: [unclosed\n")
    with pytest.raises(WhoseError) as e:
        resolve_image(None, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert e.value.code == ExitCode.CONFIG
    assert e.value.message.startswith(f"cannot read {tmp_path}/kubectl-whose/config.yaml (")
