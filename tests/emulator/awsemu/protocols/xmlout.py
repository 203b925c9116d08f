"""XML serialization of output shapes, shared by the query, ec2 and rest-xml
protocols (their element naming rules are the same; wrappers differ)."""

import xml.etree.ElementTree as ET

from .common import serialized_name, text_of


def add_member(parent, name, value, shape):
    """Append the XML of ``value`` (of ``shape``) under ``parent`` as element
    ``name``. Flattened lists and maps append several elements."""
    t = shape.type_name
    if value is None:
        return
    if t == "list":
        if shape.serialization.get("flattened"):
            item_name = shape.member.serialization.get("name", name)
            for item in value:
                add_member(parent, item_name, item, shape.member)
            return
        wrapper = ET.SubElement(parent, name)
        item_name = shape.member.serialization.get("name", "member")
        for item in value:
            add_member(wrapper, item_name, item, shape.member)
        return
    if t == "map":
        key_name = serialized_name(shape.key, "key")
        value_name = serialized_name(shape.value, "value")
        if shape.serialization.get("flattened"):
            for k, v in value.items():
                entry = ET.SubElement(parent, name)
                add_member(entry, key_name, k, shape.key)
                add_member(entry, value_name, v, shape.value)
            return
        wrapper = ET.SubElement(parent, name)
        for k, v in value.items():
            entry = ET.SubElement(wrapper, "entry")
            add_member(entry, key_name, k, shape.key)
            add_member(entry, value_name, v, shape.value)
        return
    elem = ET.SubElement(parent, name)
    if t == "structure":
        fill_structure(elem, value, shape)
    else:
        elem.text = text_of(value, shape)


def fill_structure(elem, value, shape, skip_locations=False):
    """Add the members of structure ``value`` to ``elem``. With
    skip_locations, members bound to headers/status code are left out."""
    for key, member in shape.members.items():
        if key not in value or value[key] is None:
            continue
        if skip_locations and member.serialization.get("location"):
            continue
        name = serialized_name(member, key)
        if member.serialization.get("xmlAttribute"):
            elem.set(name, text_of(value[key], member))
            continue
        add_member(elem, name, value[key], member)


def to_bytes(root):
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def error_shape(model, code):
    """The modeled error structure AWS answers with ``code``, or None."""
    try:
        return model.shape_for_error_code(code)
    except Exception:  # botocore raises for odd models; treat as unmodeled
        return None


def add_error_members(elem, model, err):
    """Append the members in ``err.extra`` to an <Error> element: typed by
    the modeled error shape where the model has one, else as text."""
    if not err.extra:
        return
    shape = error_shape(model, err.code)
    members = shape.members if shape is not None else {}
    for key, value in err.extra.items():
        if value is None or key.lower() == "message":
            continue
        member = members.get(key)
        if member is not None:
            add_member(elem, serialized_name(member, key), value, member)
        else:
            ET.SubElement(elem, key).text = str(value)
