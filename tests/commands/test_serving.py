import pytest
import tensorflow as tf

from mmkeras.commands.serving import error_reason, read_files


def _error(message):
    return tf.errors.InvalidArgumentError(None, None, message)


def test_error_reason_reads_the_failed_assertion_out_of_a_graph_execution_error():
    message = (
        "Graph execution error:\n\nDetected at node map/while/Assert/Assert defined at (most recent call last):\n"
        "<stack traces unavailable>\nassertion failed: [ImagePreprocessor could not decode the image bytes at "
        "batch index] [0] [(empty, truncated or corrupt data, or not a JPEG/PNG/GIF/BMP image)]\n"
        "\t [[{{node map/while/Assert/Assert}}]] [Op:__inference_signature_wrapper_caption_4806]"
    )
    assert error_reason(_error(message)) == (
        "ImagePreprocessor could not decode the image bytes at batch index 0 "
        "(empty, truncated or corrupt data, or not a JPEG/PNG/GIF/BMP image)"
    )

    eager = ("{{function_node __inference_signature_wrapper_7}} assertion failed: [sizes differ:] [1] [and] [3] "
             "[Op:__inference_signature_wrapper_7]")
    assert error_reason(_error(eager)) == "sizes differ: 1 and 3"


def test_error_reason_without_an_assertion_skips_the_trace_lines():
    message = ("Graph execution error:\n\nDetected at node X\n<stack traces unavailable>\nInput is empty.\n"
               "\t [[{{node X}}]]")
    assert error_reason(_error(message)) == "Input is empty."
    assert error_reason(_error("Invalid JPEG data or crop window.")) == "Invalid JPEG data or crop window."


def test_read_files_rejects_missing_paths_directories_and_empty_files(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "image.jpg").write_bytes(b"\xff\xd8 bytes")
    assert read_files([str(tmp_path / "image.jpg")]) == [b"\xff\xd8 bytes"]
    for name, problem in [("missing.jpg", "not found"), ("", "a directory"), ("empty.jpg", "is empty")]:
        with pytest.raises(ValueError, match=problem):
            read_files([str(tmp_path / "image.jpg"), str(tmp_path / name)])
