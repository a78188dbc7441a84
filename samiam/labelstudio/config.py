"""Parse a Label Studio labelling config (XML): image tags, control tags and their labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from samiam.labelstudio.errors import RequestError

BRUSH_TYPE = "brushlabels"
PROMPT_TYPES = ("keypointlabels", "rectanglelabels", "keypoint", "rectangle")
DEFAULT_MATERIALS = ("substrate", "film", "amorphous", "vacuum")


@dataclass(frozen=True)
class ImageTag:
    """An ``<Image name=... value="$key">`` object tag.

    Attributes:
        name: the tag name (what results use as ``to_name``).
        value_key: the task data key holding the image URL or path (``image`` for ``$image``).
    """

    name: str
    value_key: str


@dataclass(frozen=True)
class ControlTag:
    """A control tag (``BrushLabels``, ``KeyPointLabels``, ``RectangleLabels``, ...).

    Attributes:
        name: the tag name (what results use as ``from_name``).
        type: the tag in lower case, equal to a result's ``type`` (``brushlabels``...).
        to_names: the object tags it labels.
        labels: the ``<Label value=...>`` children, in config order.
    """

    name: str
    type: str
    to_names: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class LabelConfig:
    """The parts of a labelling config the backend needs."""

    images: tuple[ImageTag, ...]
    controls: tuple[ControlTag, ...]

    def image(self, name: str) -> ImageTag:
        """The image tag called ``name``.

        Raises:
            RequestError: no such image tag.
        """
        for tag in self.images:
            if tag.name == name:
                return tag
        known = ", ".join(t.name for t in self.images) or "none"
        raise RequestError(f'the labelling config has no <Image name="{name}"> (image tags: {known})')

    def brush_controls(self, to_name: str | None = None) -> list[ControlTag]:
        """``BrushLabels`` controls that label an image tag (``to_name`` if given)."""
        image_names = {t.name for t in self.images}
        return [
            c
            for c in self.controls
            if c.type == BRUSH_TYPE
            and any(n in image_names for n in c.to_names)
            and (to_name is None or to_name in c.to_names)
        ]

    def brush_for(self, to_name: str | None = None, label: str | None = None) -> ControlTag:
        """The ``BrushLabels`` control results go to: on ``to_name``, preferring one that has ``label``.

        Raises:
            RequestError: no ``BrushLabels`` on that image, or ``label`` is in none of them.
        """
        candidates = self.brush_controls(to_name)
        where = f" for image '{to_name}'" if to_name else ""
        if not candidates:
            raise RequestError(
                f"the labelling config has no <BrushLabels> control{where}; samiam answers with brush "
                'masks, so add e.g. <BrushLabels name="mask" toName="image"> with your labels'
            )
        if label is None:
            return candidates[0]
        for control in candidates:
            if label in control.labels:
                return control
        known = "; ".join(f"{c.name}: {', '.join(c.labels) or '(no labels)'}" for c in candidates)
        raise RequestError(f"unknown label '{label}': it is not a label of the <BrushLabels>{where} ({known})")


def _value_key(value: str | None, tag_name: str) -> str:
    if not value or not value.startswith("$") or len(value) < 2:
        raise RequestError(
            f'<Image name="{tag_name}"> must take its image from the task data, e.g. value="$image"; '
            f'got value="{value or ""}"'
        )
    return value[1:]


def parse_label_config(xml: str) -> LabelConfig:
    """Parse a labelling config.

    Args:
        xml: the config text (``label_config`` of ``/predict``, ``schema`` of ``/setup``).

    Returns:
        Its image tags and control tags.

    Raises:
        RequestError: not a string, not well-formed XML, or without any ``<Image>`` tag.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise RequestError(f"label_config must be the labelling config XML text, got {type(xml).__name__}")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise RequestError(f"label_config is not well-formed XML ({exc})") from None
    images: list[ImageTag] = []
    controls: list[ControlTag] = []
    for el in root.iter():
        if not isinstance(el.tag, str):  # comments / processing instructions
            continue
        name = el.get("name")
        if el.tag.lower() == "image" and name:
            images.append(ImageTag(name=name, value_key=_value_key(el.get("value"), name)))
        elif name and el.get("toName"):
            labels = tuple(
                child.get("value", "") for child in el if isinstance(child.tag, str) and child.tag == "Label"
            )
            to_names = tuple(n.strip() for n in el.get("toName", "").split(",") if n.strip())
            controls.append(ControlTag(name=name, type=el.tag.lower(), to_names=to_names, labels=labels))
    if not images:
        raise RequestError("the labelling config has no <Image> tag; samiam segments images only")
    return LabelConfig(images=tuple(images), controls=tuple(controls))


def micrograph_label_config(labels: Sequence[str] = DEFAULT_MATERIALS) -> str:
    """A ready labelling config for micrographs: material brushes plus SAM smart tools.

    The ``BrushLabels`` control ``material`` receives the masks; the smart ``KeyPointLabels``
    (``point``) and ``RectangleLabels`` (``box``) controls are the prompts. All three share the
    labels, so the label picked for a click or a box is the label of the mask that comes back,
    and automatic pre-annotation names material ``k`` after the ``k``-th label.

    Args:
        labels: material names, in the order automatic pre-annotation assigns them.

    Returns:
        The config XML.

    Raises:
        ValueError: no labels, an empty or duplicate label.
    """
    names = [str(v).strip() for v in labels]
    if not names or any(not v for v in names) or len(set(names)) != len(names):
        raise ValueError(f"labels must be distinct non-empty names, got {list(labels)}")
    from samiam.io.write import palette

    colours = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in palette(len(names)).tolist()]

    def label_tags(extra: str = "") -> str:
        return "\n".join(
            f'    <Label value={quoteattr(v)} background="{c}"{extra}/>' for v, c in zip(names, colours, strict=True)
        )

    inline = ' showInline="true"'
    return (
        "<View>\n"
        '  <Image name="image" value="$image" zoom="true" zoomControl="true"\n'
        '         brightnessControl="true" contrastControl="true"/>\n'
        '  <BrushLabels name="material" toName="image">\n'
        f"{label_tags()}\n"
        "  </BrushLabels>\n"
        '  <KeyPointLabels name="point" toName="image" smart="true" smartOnly="true">\n'
        f"{label_tags(inline)}\n"
        "  </KeyPointLabels>\n"
        '  <RectangleLabels name="box" toName="image" smart="true" smartOnly="true">\n'
        f"{label_tags(inline)}\n"
        "  </RectangleLabels>\n"
        "</View>\n"
    )
