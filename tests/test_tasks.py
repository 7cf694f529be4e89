"""Loaders and splits: disjoint, seeded, sized from config; bad files give one-line errors."""

import logging

import pytest

from greater.config import TaskConfig
from greater.tasks import TaskError, build_task
from greater.tasks.base import Example
from greater.tasks.splits import split
from tests.helpers import SHARED_DATA

POOL = [Example(f"q{i}", str(i)) for i in range(30)]


def test_random_splits_are_disjoint_and_repeat_by_seed():
    a = split(POOL, None, 5, 5, 10, "random", seed=1)
    b = split(POOL, None, 5, 5, 10, "random", seed=1)
    c = split(POOL, None, 5, 5, 10, "random", seed=2)
    assert (a.train, a.dev, a.test) == (b.train, b.dev, b.test)
    assert a.train != c.train
    ids = [e.question for e in a.train + a.dev + a.test]
    assert len(ids) == len(set(ids)) == 20


def test_paper_split_keeps_file_order_and_takes_the_rest():
    s = split(POOL, None, 5, 10, 0, "paper", seed=9)
    assert [e.answer for e in s.train] == ["0", "1", "2", "3", "4"]
    assert s.dev[0].answer == "5" and s.test[0].answer == "15" and len(s.test) == 15


def test_separate_test_pool_feeds_only_the_test_split():
    test_pool = [Example(f"t{i}", str(i)) for i in range(7)]
    s = split(POOL, test_pool, 3, 2, 0, "random", seed=0)
    assert sorted(e.question for e in s.test) == sorted(e.question for e in test_pool)
    assert not {e.question for e in s.train + s.dev} & {e.question for e in s.test}


def test_too_many_examples_asked_for():
    with pytest.raises(TaskError, match=r"task.n_train=25 \+ n_dev=0 \+ n_test=10 is more than the 30 examples"):
        split(POOL, None, 25, 0, 10, "random", seed=0)


def custom_cfg(path, **kwargs):
    fields = dict(
        name="custom",
        loader="custom",
        file=str(path),
        n_train=2,
        n_test=2,
        answer_type="label",
        options=["positive", "negative"],
    )
    return TaskConfig(**{**fields, **kwargs})


def test_custom_csv_with_renamed_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\nGreat film,positive\nAwful,negative\nLoved it,positive\nBoring,negative\n")
    task = build_task(custom_cfg(path, question_field="text", answer_field="label"), None, seed=0)
    assert len(task.train) == 2 and len(task.test) == 2
    assert {e.question for e in task.train + task.test} == {"Great film", "Awful", "Loved it", "Boring"}
    assert task.parse(" Positive!") == "positive"


def test_bad_rows_are_reported_with_line_numbers(tmp_path, caplog):
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"question": "a", "answer": "1"}\n{"question": "b"}\nnot json\n'
        '{"question": "c", "answer": ""}\n{"question": "d", "answer": "2"}\n'
        '{"question": "e", "answer": "3"}\n{"question": "f", "answer": "4"}\n'
    )
    with caplog.at_level(logging.WARNING):
        task = build_task(custom_cfg(path, answer_type="text", options=None), None, seed=0)
    assert len(task.train) + len(task.test) == 4
    assert "skipped 3 row(s)" in caplog.text and "lines 2, 3, 4" in caplog.text


def test_a_file_with_no_usable_row_is_an_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("q,a\n,\n")
    with pytest.raises(TaskError, match="has no usable row"):
        build_task(custom_cfg(path, question_field="q", answer_field="a"), None, seed=0)


def test_missing_files_name_the_fix(tmp_path):
    cfg = TaskConfig(name="bbh/causal_judgement", loader="bbh", answer_type="yes_no")
    with pytest.raises(TaskError, match="does not exist; set data_dir="):
        build_task(cfg, str(tmp_path / "nowhere"), seed=0)
    with pytest.raises(TaskError, match="has no bbh/causal_judgement.json"):
        build_task(cfg, str(tmp_path), seed=0)
    with pytest.raises(TaskError, match="does not exist; give the path"):
        build_task(custom_cfg(tmp_path / "x.csv"), None, seed=0)


def test_hub_without_network_says_where_to_put_files(monkeypatch, tmp_path):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    cfg = TaskConfig(name="gsm8k", loader="gsm8k", answer_type="integer")
    with pytest.raises(TaskError, match="could not load 'openai/gsm8k' from the Hugging Face hub.*data_dir="):
        build_task(cfg, None, seed=0, cache_dir=str(tmp_path))


def test_synthetic_task_is_fixed_and_correct():
    cfg = TaskConfig(name="synthetic/compare_numbers", loader="synthetic", answer_type="integer", n_train=5, n_test=5)
    a, b = build_task(cfg, None, seed=0), build_task(cfg, None, seed=0)
    assert a.train == b.train
    for ex in a.train + a.test:
        x, y = (int(t) for t in ex.question.rstrip("?").split(", ")[1].split(" or "))
        assert ex.answer == str(max(x, y))


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_real_files_load_with_their_sizes():
    gsm = build_task(
        TaskConfig(
            name="gsm8k", loader="gsm8k", answer_type="integer", n_train=100, n_dev=100, n_test=0, split="paper"
        ),
        str(SHARED_DATA),
        seed=0,
    )
    assert (len(gsm.train), len(gsm.dev), len(gsm.test)) == (100, 100, 1319)
    folio = build_task(
        TaskConfig(
            name="folio",
            loader="folio",
            answer_type="label",
            n_train=100,
            n_dev=100,
            n_test=203,
            split="paper",
            options=["True", "False", "Uncertain"],
        ),
        str(SHARED_DATA),
        seed=0,
    )
    assert len(folio.test) == 203 and {e.answer for e in folio.test} <= {"True", "False", "Uncertain"}
