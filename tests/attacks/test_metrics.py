"""Privacy metrics against scikit-image and on the embedded faces."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from attacks.metrics import (
    FaceDetector,
    face_detection_rate,
    face_reidentification,
    mean_std,
    psnr,
    ssim,
)
from attacks.scenes import make_embedded_set


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 40, 57), (3, 1, 11, 20)])
def test_ssim_and_psnr_match_skimage(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=gen, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours_ssim, ours_psnr = ssim(x, y), psnr(x, y)
    for i in range(shape[0]):
        a, b = x[i].numpy().transpose(1, 2, 0), y[i].numpy().transpose(1, 2, 0)
        ref = structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=-1,
        )
        assert ours_ssim[i].item() == pytest.approx(ref, abs=1e-10)
        assert ours_psnr[i].item() == pytest.approx(
            peak_signal_noise_ratio(a, b, data_range=1), abs=1e-4
        )
    assert ssim(x.float(), y.float())[0].item() == pytest.approx(ours_ssim[0].item(), abs=1e-5)


def test_metric_errors():
    with pytest.raises(ValueError, match="smaller than the 11-px"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 2}


def test_faces_on_embedded_originals_are_detected_and_reidentified():
    images = make_embedded_set(12, 96, seed=0)
    faces = images.faces
    assert sum(len(f) for f in faces) >= 3
    rate = face_detection_rate(FaceDetector().detect_all(images.images), faces)
    assert rate["rate"] >= 0.75
    # Originals re-identify themselves; a grey image (all faces alike) falls to chance-ish.
    reid = face_reidentification(images.images, images.images, faces, images.identities)
    assert reid["top1"] == 1.0
    assert reid["chance"] == pytest.approx(1 / reid["gallery_size"], rel=0.6)
    flat = np.full_like(images.images, 128)
    assert face_reidentification(flat, images.images, faces)["top1"] < 0.5


def test_detection_rate_bookkeeping():
    faces = [[(10, 10, 20, 20)], [], [(0, 0, 8, 8)]]
    dets = [[(12, 11, 20, 20)], [(1, 1, 5, 5)], []]
    out = face_detection_rate(dets, faces)
    assert out["rate"] == 0.5 and out["n_faces"] == 2 and out["false_positive_rate"] == 1.0
    assert face_detection_rate(dets, None)["rate"] == pytest.approx(2 / 3)


def test_box_iou_of_xywh_boxes():
    from attacks.metrics import box_iou_xywh

    iou = box_iou_xywh([(0, 0, 10, 10), (0, 0, 0, 0)], [(5, 0, 10, 10), (0, 0, 10, 10)])
    assert iou.shape == (2, 2)
    assert float(iou[0, 0]) == pytest.approx(50 / 150)  # overlap 5×10, union 150
    assert float(iou[0, 1]) == 1.0 and float(iou[1].abs().sum()) == 0.0  # empty box: no overlap
