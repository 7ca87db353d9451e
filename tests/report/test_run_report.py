"""write_run_report on a fake evaluated real-data run: the table it returns and the page it writes."""

import types

import numpy as np

from mmkeras.report.html_report import read_html_report
from mmkeras.report.run_report import write_run_report
from mmkeras.tasks.run_directory import RunDirectory


class _Predictor:
    def __init__(self, fn):
        self.fn = fn

    def predict(self, x, **kwargs):
        return self.fn(np.asarray(x))


def _task(run_dir, suffix=""):
    # Six held-out images, image i all `i`, each with the caption "scene i"; both embed to e_(i mod 4).
    images = np.stack([np.full((2, 2, 3), i, np.float32) for i in range(6)])
    batches = [{"images": images[:4], "texts": [[f"scene {i}"] for i in range(4)], "labels": np.zeros(4, np.int64),
                "metadata": [{"id": str(i)} for i in range(4)]},
               {"images": images[4:], "texts": [[f"scene {i}"] for i in range(4, 6)], "labels": np.zeros(2, np.int64),
                "metadata": [{"id": str(i)} for i in range(4, 6)]}]
    return types.SimpleNamespace(
        config={"name": "clip-csv", "task": "matching", "data": {"dataset": "csv", "path": "pairs.csv"},
                "eval": {"batch_size": 4}},
        run_dir=run_dir, evaluation_suffix=suffix,
        data=types.SimpleNamespace(evaluation_batches=lambda preprocessor, batch: iter(batches)),
        preprocessor=types.SimpleNamespace(denormalize=lambda x: np.asarray(x).astype(np.uint8)),
        tokenizer=lambda texts: np.array([int(t.decode().split()[1]) for t in texts.numpy()]),
        evaluated_image_embeddings=lambda model: model.image_model.predict(images),  # what the evaluation ranked
    )


def test_one_run_gets_a_table_and_a_page_with_its_sections(tmp_path):
    eye = np.eye(4, dtype=np.float32)
    model = types.SimpleNamespace(image_model=_Predictor(lambda x: eye[x[:, 0, 0, 0].astype(int) % 4]),
                                  text_model=_Predictor(lambda ids: eye[ids % 4]))
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.write_json("history.json", {"loss": [2.0, 1.5], "val_loss": [2.2, 1.9]})
    metrics = {"i2t_r1": 0.5, "i2t_r5": 1.0, "i2t_r10": 1.0, "t2i_r1": 0.5, "t2i_r5": 1.0, "t2i_r10": 1.0,
               "num_test_images": 6, "num_test_captions": 6, "num_train_records": 50, "num_held_out_records": 6,
               "num_skipped_records": 1}
    table, path = write_run_report(_task(run_dir), model, metrics, seconds=3.0, export_dir="export")
    lines = table.splitlines()
    assert lines[0].split() == ["model", "metric", "value", "reference"]
    assert lines[1].split() == ["clip-csv", "i2t", "R@1", "0.500", "chance", "0.167"]
    assert lines[-1].split() == ["clip-csv", "skipped", "records", "1"]
    assert path == str(tmp_path / "run" / "report.html")
    page = read_html_report(open(path).read())
    assert page["sections"] == ["results", "retrieval", "curves"]
    assert len(page["images"]) == 4 + 1  # four retrieval queries, one loss plot (loss and val_loss)
    assert {r["metric"]: r["value"] for r in page["rows"]}["num_train_records"] == "50"
    assert "its own image ranks 2 of 6" in open(path).read()  # "scene 5" ties with image 1, which comes first
    assert sorted(p.name for p in (tmp_path / "run" / "plots").iterdir()) == [
        "curves_clip-csv.png", "retrieval_clip-csv.png"]
    # Another evaluation (`mmkeras eval --set ...`) writes beside it, under its suffix; no history: no curve.
    (tmp_path / "run" / "history.json").unlink()
    _, path = write_run_report(_task(run_dir, "-batch_size=8-length_penalty=-0.5"), model, metrics)
    assert path == str(tmp_path / "run" / "report-batch_size=8-length_penalty=-0.5.html")
    text = open(path).read()
    assert "evaluated with batch_size=8, length_penalty=-0.5" in text and len(read_html_report(text)["images"]) == 4
