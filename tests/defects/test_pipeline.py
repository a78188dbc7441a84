import numpy as np
import torch

from samiam.defects import DefectParams, load_model, run_defects
from samiam.defects.autoencoder import PatchAutoencoder
from samiam.defects.patches import centre_patches, sample_patches
from samiam.defects.scoring import flagged_fraction
from samiam.defects.train import TrainConfig, train_autoencoder
from samiam.io.micrograph import micrograph_from_array
from samiam.synth.stm import synthetic_stm


def test_defects_are_found_and_the_step_is_not(tiny_model_dir):
    model = load_model(tiny_model_dir)
    found, total, false_pos = 0, 0, 0
    for seed in (100, 101, 102):
        im = synthetic_stm(128, seed=seed)
        result = run_defects(micrograph_from_array(im.heights, f"test{seed}.npy"), model)
        det = result.detection
        assert det.prepared.steps.n_steps == 1
        assert flagged_fraction(det.mask, im.step_mask) == 0.0
        hits = [det.labels[int(round(y)), int(round(x))] for x, y in im.centres]
        found += sum(h > 0 for h in hits)
        total += len(hits)
        false_pos += len(set(range(1, len(det.instances) + 1)) - set(hits))
        for inst in det.instances:
            assert 0 <= inst.cls < model.classes.n_classes
            assert abs(sum(inst.soft) - 1) < 1e-4 and inst.probability == max(inst.soft)
    assert found / total >= 0.9
    assert false_pos <= 3


def test_a_defect_free_flat_image_gives_few_defects(tiny_model_dir):
    model = load_model(tiny_model_dir)
    im = synthetic_stm(128, seed=200, n_defects=0, step=False)
    result = run_defects(micrograph_from_array(im.heights, "clean.npy"), model)
    assert result.detection.mask.mean() < 0.01


def test_inference_is_deterministic(tiny_model_dir):
    model = load_model(tiny_model_dir)
    mg = micrograph_from_array(synthetic_stm(128, seed=300).heights, "a.npy")
    a = run_defects(mg, model, DefectParams(seed=3))
    b = run_defects(mg, model, DefectParams(seed=3))
    assert np.array_equal(a.detection.mask, b.detection.mask)
    assert np.array_equal(a.detection.maps.character, b.detection.maps.character)
    assert np.array_equal(a.class_map, b.class_map)


def test_training_is_deterministic_under_a_seed():
    rng = np.random.default_rng(0)
    img = synthetic_stm(96, seed=9).heights
    patches = centre_patches(sample_patches((img - img.mean()) / img.std(), 32, 200, rng))
    states = []
    for _ in range(2):
        torch.manual_seed(123)  # same initialisation
        model = PatchAutoencoder()
        curve = train_autoencoder(model, patches, TrainConfig(epochs=2, batch_size=32), seed=4, progress=False)
        states.append((model.state_dict(), curve))
    (s1, c1), (s2, c2) = states
    assert c1 == c2
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_model_folder_round_trip(tiny_model_dir):
    model = load_model(tiny_model_dir)
    for name in (
        "config.json",
        "ae1.pt",
        "ae2.pt",
        "classes.npz",
        "curve_ae1.csv",
        "curve_ae1.png",
        "curve_ae2.csv",
        "curve_ae2.png",
    ):
        assert (tiny_model_dir / name).is_file(), name
    assert model.ae1.latent == 32 and model.ae2.latent == 8
    chosen = model.config["classes"]["chosen"]
    assert {"components", "covariance_type", "bic", "aic"} <= set(chosen)
    header = (tiny_model_dir / "curve_ae1.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,val_loss,lr"
