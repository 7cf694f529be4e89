"""Loaders and build_task: real files, custom files with renamed columns, bad rows and one-line errors.

Splits are tested in test_splits.py."""

import logging
from dataclasses import replace

import pytest

from greater.config import TaskConfig
from greater.tasks import TaskError, build_task
from greater.tasks.synthetic import ANIMALS, FRUITS
from tests.helpers import SHARED_DATA

ANIMAL_WORDS, FRUIT_WORDS = set(ANIMALS), set(FRUITS)


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
        task = build_task(custom_cfg(path, answer_type="text", options=None, skip_bad_rows=True), None, seed=0)
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


@pytest.mark.parametrize("name", ["synthetic/compare_numbers", "synthetic/odd_one_out", "synthetic/animal_or_fruit"])
def test_every_synthetic_config_builds_with_gold_its_parser_reads(name):
    import greater

    task = greater.load_task(name)
    words = ANIMAL_WORDS | FRUIT_WORDS
    for ex in task.train + task.test:
        assert task.is_correct(task.parse(f" {ex.answer}."), ex)
        if name.endswith("odd_one_out"):
            items = ex.question.split(": ")[1].rstrip("?").split(", ")
            in_animals = [w in ANIMAL_WORDS for w in items]
            assert set(items) <= words and in_animals.count(ex.answer in ANIMAL_WORDS) == 1
        if name.endswith("animal_or_fruit"):
            word = ex.question.split()[2]
            assert ex.answer == ("animal" if word in ANIMAL_WORDS else "fruit")


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


def task_error(cfg, data_dir=None, **kwargs) -> str:
    """The TaskError message build_task raises; it must be one line."""
    with pytest.raises(TaskError) as info:
        build_task(cfg, data_dir, seed=0, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


BBH_CFG = TaskConfig(name="bbh/causal_judgement", loader="bbh", answer_type="yes_no")


def test_missing_data_dir_and_file_messages_name_the_path_and_the_fix(tmp_path):
    assert task_error(BBH_CFG, str(tmp_path / "nowhere")) == (
        f"data directory '{tmp_path / 'nowhere'}' does not exist; set data_dir= to the folder holding "
        "bbh/, gsm8k/ and folio/ (e.g. data_dir=../shared/data)"
    )
    message = task_error(BBH_CFG, str(tmp_path))
    assert message.startswith(f"data directory '{tmp_path}' has no bbh/causal_judgement.json")
    gsm = TaskConfig(name="gsm8k", loader="gsm8k", answer_type="integer")
    assert "has no gsm8k/train.jsonl" in task_error(gsm, str(tmp_path))


def test_bbh_file_from_extra_bbh_task(tmp_path):
    (tmp_path / "bbh").mkdir()
    rows = [{"input": f"Is {i} even?", "target": "Yes" if i % 2 == 0 else "No"} for i in range(6)]
    (tmp_path / "bbh" / "parity.json").write_text(__import__("json").dumps({"examples": rows}))
    cfg = TaskConfig(
        name="bbh/my_parity", loader="bbh", answer_type="yes_no", n_train=2, n_test=4, extra={"bbh_task": "parity"}
    )
    task = build_task(cfg, str(tmp_path), seed=0)
    assert sorted(e.question for e in task.train + task.test) == sorted(r["input"] for r in rows)


def test_too_large_n_train_through_build_task(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(f'{{"question": "q{i}", "answer": "a{i}"}}\n' for i in range(5)))
    message = task_error(custom_cfg(path, answer_type="text", options=None, n_train=10, n_test=0))
    assert (
        message == "task.n_train=10 + n_dev=0 is more than the 5 examples available; lower them "
        "(task.n_test=0 takes all that remain)"
    )


def test_unknown_loader_and_answer_type(tmp_path):
    assert "unknown task.loader 'nope'" in task_error(TaskConfig(name="x", loader="nope"))
    path = tmp_path / "d.csv"
    path.write_text("question,answer\na,1\nb,2\nc,3\nd,4\n")
    assert "unknown task.answer_type 'odd'" in task_error(custom_cfg(path, answer_type="odd"))


def test_custom_tsv_and_zero_answers(tmp_path):
    path = tmp_path / "sums.tsv"
    path.write_text("prompt\tresult\n1 - 1\t0\n2 - 1\t1\n5 - 3\t2\n9 - 6\t3\n")
    cfg = custom_cfg(path, question_field="prompt", answer_field="result", answer_type="integer", options=None)
    task = build_task(cfg, None, seed=0)
    assert {e.question: e.answer for e in task.train + task.test}["1 - 1"] == "0"


def test_custom_jsonl_keeps_numeric_zero(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"question": "a", "answer": 0}\n{"question": "b", "answer": 1}\n'
        '{"question": "c", "answer": 2}\n{"question": "d", "answer": null}\n[1, 2]\n'
        '{"question": "e", "answer": 3}\n'
    )
    task = build_task(custom_cfg(path, answer_type="integer", options=None, skip_bad_rows=True), None, seed=0)
    assert sorted(e.answer for e in task.train + task.test) == ["0", "1", "2", "3"]


def test_wrong_column_names_list_the_columns_found(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\nGreat,positive\nAwful,negative\n")
    message = task_error(custom_cfg(path))
    assert "none has both 'question' and 'answer' (columns found: label, text)" in message
    assert "set task.question_field / task.answer_field" in message


def test_empty_custom_files_are_errors(tmp_path):
    for name, text in [("empty.jsonl", ""), ("header_only.csv", "question,answer\n"), ("blank.jsonl", "\n\n")]:
        path = tmp_path / name
        path.write_text(text)
        assert "has no usable row" in task_error(custom_cfg(path)), name


def test_unsupported_or_missing_custom_file(tmp_path):
    path = tmp_path / "data.json"
    path.write_text("[]")
    assert (
        task_error(custom_cfg(path)) == f"task.file '{path}' is not a .jsonl, .csv or .tsv file; convert it "
        "to one of those"
    )
    no_file = custom_cfg(path)
    no_file.file = None
    assert "task=custom needs task.file" in task_error(no_file)


def test_offline_hub_fails_fast_with_where_to_put_files(monkeypatch, tmp_path):
    import time

    import datasets

    from greater.tasks import loaders

    def never(*args, **kwargs):
        raise AssertionError("load_dataset must not be called when the hub is unreachable and nothing is cached")

    monkeypatch.setattr(loaders, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(datasets, "load_dataset", never)
    start = time.monotonic()
    message = task_error(
        TaskConfig(name="folio", loader="folio", answer_type="label", options=["True", "False", "Uncertain"]),
        cache_dir=str(tmp_path),
    )
    assert time.monotonic() - start < 2
    assert message == (
        "could not load 'yale-nlp/FOLIO' from the Hugging Face hub (no network and not cached); put "
        "folio/folio-train.jsonl and folio/folio-validation.jsonl in a folder and set data_dir= to it "
        "(e.g. data_dir=../shared/data)"
    )
    custom_hub = custom_cfg("someone/some-dataset")
    assert "download it as a .jsonl or .csv file and set task.file=" in task_error(custom_hub, cache_dir=str(tmp_path))


def test_sports_understanding_gold_reads_as_Yes_No(tmp_path):
    (tmp_path / "bbh").mkdir()
    rows = [{"input": f"Sentence {i}", "target": "yes" if i % 2 else "no"} for i in range(6)]
    (tmp_path / "bbh" / "sports_understanding.json").write_text(__import__("json").dumps({"examples": rows}))
    cfg = TaskConfig(
        name="bbh/sports_understanding", loader="bbh", answer_type="yes_no", options=["Yes", "No"], n_train=2, n_test=4
    )
    task = build_task(cfg, str(tmp_path), seed=0)
    assert {e.answer for e in task.train + task.test} == {"Yes", "No"}
    example = next(e for e in task.test if e.answer == "Yes")
    assert task.target_text(example) == " Yes"
    assert task.is_correct(task.parse(" yes, it is plausible."), example)
    assert not task.is_correct(task.parse(" No."), example)


def test_datasets_cache_follows_the_hugging_face_variables(monkeypatch, tmp_path):
    from greater.tasks.loaders import datasets_cache

    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    assert datasets_cache(str(tmp_path)) == tmp_path / "datasets"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert datasets_cache("~/unused") == tmp_path / "hf" / "datasets"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds"))
    assert datasets_cache("~/unused") == tmp_path / "ds"


def test_test_questions_seen_in_train_or_dev_are_reported_and_dedupe_drops_them(tmp_path, caplog):
    path = tmp_path / "repeats.csv"
    # file order (split=paper): 2 train, 1 dev, then test; two test questions repeat train/dev ones up to
    # whitespace and case
    rows = ["Great film", "Awful", "Boring", "great   FILM", "Loved it", "BORING", "Fine"]
    path.write_text("q,a\n" + "".join(f"{q},positive\n" for q in rows))
    cfg = custom_cfg(path, question_field="q", answer_field="a", split="paper", n_dev=1, n_test=0, dedupe=False)
    with caplog.at_level(logging.WARNING):
        kept = build_task(cfg, None, seed=0)
    assert [e.question for e in kept.test] == ["great   FILM", "Loved it", "BORING", "Fine"]
    assert (kept.split_overlap, kept.dropped_overlap) == (2, 0)
    assert "2 test question(s) also appear in train or dev" in caplog.text and "task.dedupe=true" in caplog.text
    deduped = build_task(replace(cfg, dedupe=True), None, seed=0)
    assert [e.question for e in deduped.test] == ["Loved it", "Fine"]
    assert (deduped.split_overlap, deduped.dropped_overlap) == (0, 2)


def test_dedupe_is_on_by_default_and_off_under_the_paper_protocol():
    from greater import compose

    assert TaskConfig.__dataclass_fields__["dedupe"].default is True
    assert compose([]).task.dedupe is True
    for experiment in ("paper_bbh", "paper_gsm8k", "paper_folio", "paper_bbh_scripts"):
        assert compose([f"experiment={experiment}"]).task.dedupe is False
