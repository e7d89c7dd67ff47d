"""The predictions file (results.py is its one home): what is written reads back exactly, and a file
that does not parse is refused with its name and line."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from chrombench import results


def test_what_is_written_reads_back_exactly_gene_ids_and_floats_included(tmp_path):
    ids = ["g2", "ENSG0001,alt", 'quote"d', "007"]  # a comma and a quote must survive; leading zeros kept
    prob = [0.1 + 0.2, 1 / 3, 0.0, 1.0]  # repr: the float itself, not 8 digits of it
    label = [1, 0, 0, 1]
    path = results.predictions_path(tmp_path, "simremc", "m", "E003", 2)
    results.write_predictions(path, ids, prob, label)
    assert path.name == "seed-2.predictions.csv" and path.parent == results.record_dir(tmp_path, "simremc", "m", "E003")
    got_ids, got_prob, got_label = results.read_predictions(path, by_gene=False)
    assert got_ids.tolist() == ids and got_prob.tolist() == prob and got_label.tolist() == label
    by_gene = results.read_predictions(path)
    assert by_gene[0].tolist() == sorted(ids)
    assert by_gene[1].tolist() == [prob[ids.index(g)] for g in sorted(ids)]


def test_a_bundle_keeps_it_gzipped_and_the_record_finds_it(tmp_path):
    record = tmp_path / "seed-0.json"
    assert results.find_predictions(record, 0) is None
    text = results.predictions_text(["a", "b"], np.array([0.25, 0.75], dtype=np.float32), np.array([0, 1]))
    (tmp_path / results.predictions_name(0, gz=True)).write_bytes(gzip.compress(text.encode()))
    found = results.find_predictions(record, 0)
    assert found.name == "seed-0.predictions.csv.gz"
    assert results.read_predictions(found)[1].tolist() == [0.25, 0.75]


def test_without_labels_the_file_has_two_columns(tmp_path):
    text = results.predictions_text(["a"], [0.5])
    assert text == "gene_id,probability\na,0.5\n"


@pytest.mark.parametrize("body,words", [
    ("gene_id,probability,label\na,0.5,1\nb,high,0\n", "line 3: could not convert string to float: 'high'"),
    ("gene_id,probability,label\na,0.5,1\nb,0.5\n", "line 3 has 2 fields, the header 3"),
    ("gene_id,probability\na,0.5\n", "no column label"),
    ("", "empty"),
])
def test_a_file_that_does_not_parse_is_named_with_the_line(tmp_path, body, words):
    path = tmp_path / "seed-0.predictions.csv"
    path.write_text(body)
    with pytest.raises(ValueError, match=words) as err:
        results.read_predictions(path)
    assert str(path) in str(err.value)


def test_a_damaged_gzip_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "seed-0.predictions.csv.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="not a UTF-8 text"):
        results.read_predictions(path)
