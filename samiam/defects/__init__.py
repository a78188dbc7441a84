"""Unsupervised defect stage for STM height maps: flatten, AE1 maps, defect mask, AE2 + GMM classes."""

from samiam.defects.pipeline import DefectParams, DefectResult, TrainParams, run_defects, train_defect_model
from samiam.defects.store import FORMAT_VERSION, DefectModel, load_model, save_model

__all__ = [
    "FORMAT_VERSION",
    "DefectModel",
    "DefectParams",
    "DefectResult",
    "TrainParams",
    "load_model",
    "run_defects",
    "save_model",
    "train_defect_model",
]
