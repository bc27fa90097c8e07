"""Saliency overlays: where the map is zero the image is unchanged; the peak is coloured."""

import torch

from pano360.viz import overlay_saliency


def test_overlay_keeps_the_image_where_the_map_is_zero_and_colours_the_peak():
    image = torch.full((2, 3, 8, 16), 0.25)
    sal = torch.zeros(2, 1, 8, 16)
    sal[:, :, 3, 5] = 2.0
    out = overlay_saliency(image, sal, alpha=0.7)
    assert out.shape == (2, 3, 8, 16) and out.min() >= 0 and out.max() <= 1
    mask = torch.ones(8, 16, dtype=torch.bool)
    mask[3, 5] = False
    torch.testing.assert_close(out[..., mask], image[..., mask])
    # The peak gets the hottest colour (white) at opacity alpha.
    torch.testing.assert_close(out[:, :, 3, 5], torch.full((2, 3), 0.25 * 0.3 + 0.7))


def test_overlay_of_gray_and_rgba_images_is_rgb():
    sal = torch.rand(1, 1, 4, 8)
    assert overlay_saliency(torch.rand(1, 1, 4, 8), sal).shape == (1, 3, 4, 8)
    assert overlay_saliency(torch.rand(1, 4, 4, 8), sal).shape == (1, 3, 4, 8)
    blank = overlay_saliency(torch.full((1, 3, 4, 8), 0.5), torch.zeros(1, 1, 4, 8))
    assert torch.equal(blank, torch.full((1, 3, 4, 8), 0.5))
