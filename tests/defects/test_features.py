import numpy as np

from samiam.defects import DefectParams, load_model, run_defects
from samiam.defects.blobs import BlobParams
from samiam.defects.instances import DefectInstance
from samiam.defects.pipeline import defect_features, shape_descriptors
from samiam.io.micrograph import micrograph_from_array
from samiam.synth.stm import synthetic_stm


def test_shape_descriptors_are_sign_log_amplitude_and_log_area():
    insts = [
        DefectInstance(1, [0, 0, 3, 3], [1.0, 1.0], 9, contrast=2.0),
        DefectInstance(2, [5, 5, 6, 6], [8.0, 8.0], 30, contrast=-4.0),
    ]
    d = shape_descriptors(insts)
    assert d.shape == (2, 3)
    assert d[:, 0].tolist() == [1.0, -1.0]
    assert d[1, 1] > d[0, 1] and d[1, 2] > d[0, 2]


def test_class_features_append_the_descriptors_to_the_ae2_latent(tiny_model_dir):
    import torch

    model = load_model(tiny_model_dir)
    im = synthetic_stm(128, seed=400)
    res = run_defects(micrograph_from_array(im.heights, "f.npy"), model)
    insts = res.detection.instances
    assert insts
    f = defect_features(model.ae2, res.detection.prepared.heights, insts, torch.device("cpu"))
    assert f.shape == (len(insts), model.ae2.latent + 3)
    assert np.array_equal(f[:, -3:], shape_descriptors(insts))
    # peaks and troughs of the synthetic image get opposite contrast signs
    signs = {np.sign(i.contrast) for i in insts}
    assert signs == {-1.0, 1.0}


def test_error_mask_mode_still_runs(tiny_model_dir):
    model = load_model(tiny_model_dir)
    im = synthetic_stm(128, seed=401)
    params = DefectParams(blobs=BlobParams(enabled=False))
    res = run_defects(micrograph_from_array(im.heights, "e.npy"), model, params)
    assert res.detection.n_blobs == 0 and res.detection.period is None
    assert res.detection.mask.shape == im.heights.shape
