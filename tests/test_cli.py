"""keras_morsa.cli: shared plumbing of the bin/ scripts."""

from keras_morsa import cli


def test_prefer_onednn_sets_the_variable_only_when_unset(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert cli.prefer_onednn() == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's choice wins
    assert cli.prefer_onednn() == "0"
