from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from scopewidgets.testing import fake_activations
from scopewidgets.widgets._export import script_json

EVIL = ["<bos>", "<img src=x onerror=alert(1)>", "</script>", "<b>bold</b>", "<!--", "\u2028"]


def page_data(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="sw-data">(.*?)</script>', page, re.S)
    assert block, "data block missing"
    return json.loads(block.group(1))


def buffer(node: dict, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(node["buffer"]["__sw_buffer__"]), dtype=dtype)


def test_script_json_cannot_close_the_script() -> None:
    text = script_json({"t": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": "</script><!-- & \u2028"}


def test_export_inlines_state_buffers_and_offline_answers(tmp_path) -> None:
    values = np.zeros((len(EVIL), 4), dtype=np.float32)
    values[1, 2], values[2, 2], values[3, 1] = 3.0, 1.0, 2.0
    acts = fake_activations(EVIL, values, labels={2: "<i>label</i>"})
    page = acts.save_html(tmp_path / "acts.html").read_text(encoding="utf-8")
    assert page.count("</script>") == 2  # the data block and the loader: token text closed nothing
    assert "<img" not in page and "<b>bold" not in page and "<i>label" not in page
    assert "http:" not in page and "https:" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    data = page_data(page)
    part = data["parts"][0]  # the one widget of the page
    assert part["state"]["tokens"][:4] == [
        "<bos>",
        "<img src=x onerror=alert(1)>",
        "</script>",
        "<b>bold</b>",
    ]
    assert buffer(part["state"]["topk_scale"], "float32")[:4].tolist() == [0.0, 3.0, 1.0, 2.0]
    assert buffer(part["state"]["topk_values"], "uint8").tolist() == [255, 255, 255]
    assert "render" in part["module"] and "mount" in data["runtime"] and ".scopewidgets" in part["css"]
    assert part["state"]["labels"] == {"2": "<i>label</i>"}  # no kernel to ask: every listed label inlined
    reply = part["responses"]["selected_feature"]["2"]["selected_column"]
    assert buffer(reply, "float32").tolist() == values[:, 2].tolist() and reply["limits"] == [0.0, 3.0]


def test_export_keeps_the_current_selection(tmp_path) -> None:
    acts = fake_activations(["<bos>", "a", "b"], [[0, 0], [1.0, 0.5], [0, 2.0]])
    acts._view.selected_feature = 1
    data = page_data(acts.save_html(tmp_path / "sel.html").read_text(encoding="utf-8"))
    part = data["parts"][0]  # the one widget of the page
    assert part["state"]["selected_feature"] == 1
    assert buffer(part["state"]["selected_column"], "float32").tolist() == [0.0, 0.5, 2.0]


def test_export_inlines_labels_the_kernel_would_send_on_hover(tmp_path) -> None:
    acts = fake_activations(
        ["<bos>", "a", "b"], [[0, 0, 0], [3.0, 1.0, 0], [0, 0, 0.5]], labels={1: "one", 2: "two"}
    )
    view = acts.widget(n_features=1)
    assert view.labels == {}  # the side list holds feature 0 only, which has no label
    data = page_data(view.save_html(tmp_path / "labels.html").read_text(encoding="utf-8"))
    part = data["parts"][0]  # the one widget of the page
    assert part["state"]["labels"] == {"1": "one", "2": "two"}


def test_several_widgets_share_one_page_with_their_own_state(tmp_path) -> None:
    import hashlib

    from scopewidgets.widgets import save_html, to_html
    from scopewidgets.widgets._export import LOADER

    first = fake_activations(["<bos>", "a"], np.array([[0, 0], [1, 0]], dtype=np.float32)).widget()
    second = fake_activations(["<bos>", "</script>"], np.array([[0, 0], [0, 2]], dtype=np.float32)).widget()
    second.selected_feature = 1
    page = save_html([first, second], tmp_path / "both.html", title="<both>").read_text(encoding="utf-8")
    assert page.count("</script>") == 2 and "<title>&lt;both&gt;</title>" in page
    data = page_data(page)
    assert "mount" in data["runtime"] and len(data["parts"]) == 2
    assert [part["state"]["tokens"] for part in data["parts"]] == [["<bos>", "a"], ["<bos>", "</script>"]]
    assert data["parts"][1]["state"]["selected_feature"] == 1 and "render" in data["parts"][0]["module"]
    loader = re.search(r'<script type="module">(.*?)</script>', page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(loader.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}' blob:" in page  # the CSP admits exactly this page's loader
    assert "data.parts" in loader
    single = to_html(first)
    assert LOADER in single and len(page_data(single)["parts"]) == 1  # one loader for one widget or several
    with pytest.raises(ValueError, match="at least one widget"):
        to_html([])


@pytest.mark.parametrize(("path", "named"), [(None, "None"), ("", "an empty string"), (3, "a int")])
def test_save_html_without_a_path_names_the_allowed_types(path, named, tmp_path) -> None:
    acts = fake_activations(["<bos>", "a"], np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=rf"a str or an os.PathLike such as pathlib.Path\), got {named}$"):
        acts.save_html(path)
    assert acts.save_html(tmp_path / "ok.html").is_file()  # a Path still works
    assert acts.save_html(str(tmp_path / "ok2.html")).is_file()  # and a str
