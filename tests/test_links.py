import pytest

from scopewidgets import SAE, SAEConfig
from scopewidgets.core.links import neuronpedia_url


def _sae(source, site="resid_post", layer=20, d_sae=16384, **extra):
    return SAE(SAEConfig(d_in=8, d_sae=d_sae, site=site, layer=layer, source=source, extra=extra))


@pytest.mark.parametrize(
    ("sae", "url"),
    [
        (
            _sae("google/gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71"),
            "gemma-2-2b/20-gemmascope-res-16k/7",
        ),
        (
            _sae("google/gemma-scope-9b-it-res/layer_9/width_131k/average_l0_10", layer=9, d_sae=131072),
            "gemma-2-9b-it/9-gemmascope-res-131k/7",
        ),
        (
            _sae("google/gemma-scope-2b-pt-mlp/layer_3/width_1m/average_l0_9", "mlp_out", 3, 2**20),
            "gemma-2-2b/3-gemmascope-mlp-1m/7",
        ),
        (
            _sae("google/gemma-scope-2-4b-it/resid_post/layer_17_width_16k_l0_medium", layer=17),
            "gemma-3-4b-it/17-gemmascope-2-res-16k/7",
        ),
        (_sae("/tmp/whatever", neuronpedia_id="gemma-2-2b/12-res-16k"), "gemma-2-2b/12-res-16k/7"),
    ],
)
def test_official_saes_link_to_neuronpedia(sae, url):
    assert neuronpedia_url(sae, 7) == f"https://www.neuronpedia.org/{url}"


def test_other_saes_have_no_link():
    assert neuronpedia_url(_sae("/home/me/my_sae"), 1) is None
    assert neuronpedia_url(_sae("random", site=None, layer=None), 1) is None
