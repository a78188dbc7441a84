import json

import numpy as np
from pycocotools import mask as mask_utils

from samiam.masks import MaskRecord, bbox_of, decode_rle, encode_rle, rle_for_coco, rle_for_json
from samiam.segmentation import Segmentation


def test_rle_round_trip_through_pycocotools_and_json():
    rng = np.random.default_rng(0)
    m = rng.random((37, 53)) > 0.6
    rle = encode_rle(m)
    assert isinstance(rle["counts"], str)
    back = json.loads(json.dumps(rle))
    np.testing.assert_array_equal(decode_rle(back), m)
    # pycocotools itself agrees on the area and decodes the bytes form
    coco = {"size": back["size"], "counts": back["counts"].encode()}
    assert int(mask_utils.area(coco)) == int(m.sum())
    np.testing.assert_array_equal(mask_utils.decode(coco).astype(bool), m)


def test_uncompressed_list_rle_decodes():
    m = np.zeros((4, 3), bool)
    m[1:3, 1] = True
    # column-major runs: col0: 4 zeros; col1: 1 zero, 2 ones, 1 zero; col2: 4 zeros
    rle = {"size": [4, 3], "counts": [5, 2, 5]}
    np.testing.assert_array_equal(decode_rle(rle), m)


def test_bbox_and_record():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert bbox_of(m) == [3, 2, 6, 3]
    assert bbox_of(np.zeros((3, 3), bool)) == [0, 0, 0, 0]
    r = MaskRecord.from_mask(m, score=0.7, material=2)
    assert r.area == 18 and r.shape == (10, 12)


def test_segmentation_json_round_trip_and_label_map():
    a = np.zeros((8, 8), bool)
    a[:4] = True
    b = np.zeros((8, 8), bool)
    b[4:] = True
    seg = Segmentation(
        "x.png",
        8,
        8,
        [MaskRecord.from_mask(a, material=1), MaskRecord.from_mask(b, material=2)],
        run={"model": "m"},
    )
    doc = json.loads(json.dumps(seg.to_json()))
    assert [a["id"] for a in doc["annotations"]] == [1, 2]
    assert set(doc["annotations"][0]) >= {"id", "segmentation", "area", "bbox", "material", "score"}
    back = Segmentation.from_json(doc)
    lm = back.label_map()
    assert lm.dtype == np.uint16
    assert (lm[:4] == 1).all() and (lm[4:] == 2).all()


def test_rle_str_bytes_conversion_round_trips():
    rng = np.random.default_rng(1)
    m = rng.random((21, 17)) > 0.5
    rle = encode_rle(m)
    coco = rle_for_coco(rle)
    assert isinstance(coco["counts"], bytes) and coco["counts"].decode("ascii") == rle["counts"]
    assert rle_for_coco(coco) == coco  # bytes stay bytes
    np.testing.assert_array_equal(mask_utils.decode(coco).astype(bool), m)
    assert rle_for_json(coco) == rle and rle_for_json(rle) == rle
    assert rle_for_json(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))) == rle
    listed = rle_for_coco({"size": [4, 3], "counts": [5, 2, 5]})  # uncompressed: compressed by pycocotools
    assert isinstance(listed["counts"], bytes) and int(mask_utils.area(listed)) == 2
    assert "counts" in rle and isinstance(rle["counts"], str)  # the input is not changed


def test_record_dict_round_trip():
    m = np.zeros((6, 5), bool)
    m[1:4, 2:5] = True
    rec = MaskRecord.from_mask(m, score=0.123456789, material="Au", extra={"prompt": [1, 2]})
    d = json.loads(json.dumps(rec.to_dict()))
    assert list(d) == ["rle", "area", "bbox", "material", "score", "extra"]
    assert d["area"] == 9 and d["bbox"] == [2, 1, 3, 3] and d["score"] == 0.123456789
    back = MaskRecord.from_dict(d)
    assert back == rec
    np.testing.assert_array_equal(back.decode(), m)
    ann = MaskRecord.from_dict({"segmentation": rec.rle, "bbox": [2, 1, 3, 3], "area": 9}, rle_key="segmentation")
    assert ann.score == 1.0 and ann.extra == {} and ann.material is None


def test_masks_json_annotation_keys_and_rounding():
    m = np.zeros((4, 4), bool)
    m[:2] = True
    plain = MaskRecord.from_mask(m, score=0.98765432, material=0)
    extra = MaskRecord.from_mask(~m, score=0.5, extra={"tiles": [0]})
    anns = Segmentation(file="x.png", height=4, width=4, masks=[plain, extra]).to_json()["annotations"]
    assert list(anns[0]) == ["id", "segmentation", "area", "bbox", "material", "score"]
    assert list(anns[1]) == ["id", "segmentation", "area", "bbox", "material", "score", "extra"]
    assert anns[0]["score"] == 0.987654 and anns[1]["extra"] == {"tiles": [0]} and anns[1]["id"] == 2
