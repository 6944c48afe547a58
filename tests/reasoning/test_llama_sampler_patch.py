"""The sampler patch reaches into llama-cpp-python's private API: these fail loudly when it changes.

If one fails after an upgrade of llama-cpp-python, re-check the patch
(reasoning/llama_sampler_patch.py) against the new version's ``Llama._init_sampler``,
``_internals.LlamaSampler`` and ``llama_sampler_i``, rerun
tests/reasoning/test_llama_backend.py (greedy answers must equal stock decoding), and
only then add the version to ``SUPPORTED_LLAMA_CPP_VERSIONS``.
"""

from __future__ import annotations

import types

import pytest

from reasoning.backend import LLMError
from reasoning.llama_sampler_patch import (PRIVATE_NAMES, SUPPORTED_LLAMA_CPP_VERSIONS, UnsupportedLlamaCpp,
                                           check_llama_cpp, missing_private_names, prefiltered_llama_class)

llama_cpp = pytest.importorskip("llama_cpp")


def test_the_installed_llama_cpp_python_is_one_the_patch_was_written_for() -> None:
    assert llama_cpp.__version__ in SUPPORTED_LLAMA_CPP_VERSIONS, (
        f"llama-cpp-python {llama_cpp.__version__} is installed; the sampler patch was written for "
        f"{SUPPORTED_LLAMA_CPP_VERSIONS}: re-check it (see this module's docstring)")


def test_every_private_name_the_patch_uses_is_still_there() -> None:
    assert missing_private_names(llama_cpp) == []
    check_llama_cpp(llama_cpp)
    assert issubclass(prefiltered_llama_class(), llama_cpp.Llama)


def _stand_in(version: str, drop: str | None = None) -> types.ModuleType:
    """A module that looks like the installed llama_cpp, at another version or without one name."""
    fake = types.ModuleType("llama_cpp")
    for name in dir(llama_cpp):
        setattr(fake, name, getattr(llama_cpp, name))
    fake.__name__ = "llama_cpp"
    fake.__version__ = version
    if drop is not None:
        delattr(fake, drop)
    return fake


def test_another_version_is_refused_with_the_versions_and_the_fix() -> None:
    with pytest.raises(UnsupportedLlamaCpp) as caught:
        check_llama_cpp(_stand_in("0.4.0"))
    message = str(caught.value)
    assert "0.4.0" in message and SUPPORTED_LLAMA_CPP_VERSIONS[-1] in message
    assert "make setup" in message and "--backend http" in message
    assert isinstance(caught.value, LLMError)   # the app and CLI report it like any load failure


@pytest.mark.parametrize("name", ["llama_sampler_chain_get", "llama_state_seq_set_data", "llama_sampler_i"])
def test_a_missing_private_name_is_named(name: str) -> None:
    assert name in PRIVATE_NAMES
    fake = _stand_in(SUPPORTED_LLAMA_CPP_VERSIONS[-1], drop=name)
    assert name in missing_private_names(fake)
    with pytest.raises(UnsupportedLlamaCpp, match=name):
        check_llama_cpp(fake)
