#!/usr/bin/env python3
"""Generates the built-in schema metadata of BeeMesh's translator catalog.

Regenerate (from the repository root, after `cargo fetch` has put both crates into
~/.cargo/registry/src/):

    python3 translator/gen/catalog.py

Inputs (found by glob under ~/.cargo/registry/src/*/):
  * k8s-openapi-0.29.0/src/v1_33/**  : definition names (schemars `schema_name`), the JSON
    field names of every type (its serde impls) and the `Resource` impls (group, version,
    kind, plural, scope, list kind).
  * k8s-pb-0.9.0/src/**              : the prost messages (field tags and wire types) and
    the upstream doc-comment markers (+patchMergeKey, +patchStrategy, +listType,
    +listMapKey, +mapType, +structType) that the schemars output lacks.

Outputs:
  * translator/data/k8s-1.33-meta.json  (compact JSON, committed):
      {"definitions": {DEF: {"x": {jsonField: {x-kubernetes-...: ...}},   # field extensions
                             "dx": {x-kubernetes-map-type: ...},            # definition extensions
                             "pb": [[tag, jsonField, kind, repeated], ...]}}, # protobuf table
       "resources": [[group, version, kind, plural, scope, listKind, DEF], ...]}
    `kind` is one of string|bool|int32|int64|double|float|bytes, `m:DEF` (a message) or
    `map:KEY:VALUE` (VALUE again a scalar or `m:DEF`). A field whose JSON name is "" is
    inlined into its parent (Go `json:",inline"`, e.g. Volume.volumeSource).
    `scope` is Namespaced, Cluster or Subresource (Scale, Eviction, TokenRequest, ...).
  * translator/src/catalog/types_v1_33.rs: the Rust path of every type that implements
    `JsonSchema`, so the catalog can ask schemars for all of them.

Python 3 standard library only.
"""

import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_JSON = os.path.join(ROOT, "translator", "data", "k8s-1.33-meta.json")
OUT_TYPES = os.path.join(ROOT, "translator", "src", "catalog", "types_v1_33.rs")


def find_crate(name):
    hits = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/" + name)))
    if not hits:
        sys.exit("cannot find %s under ~/.cargo/registry/src/*/ (run `cargo fetch` first)" % name)
    return hits[-1]


OPENAPI_SRC = os.path.join(find_crate("k8s-openapi-0.29.0"), "src", "v1_33")
PB_SRC = os.path.join(find_crate("k8s-pb-0.9.0"), "src")


def norm(name):
    """Name key shared by prost snake_case and JSON camelCase names (volume_id ~ volumeID)."""
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("r#", ""))


# ---------------------------------------------------------------- k8s-openapi

RE_SCHEMA_IMPL = re.compile(
    r"impl(?:<T>)? crate::schemars::JsonSchema for (\w+)(?:<T>)? \{\s*fn schema_name\(\)[^{]*\{\s*\"([^\"]+)\"",
    re.S,
)
RE_FIELD_NAME = re.compile(r'^\s*"([^"]+)" => Field::Key_\w+,', re.M)
RE_RESOURCE = re.compile(r"impl crate::Resource for (\w+) \{(.*?)\n\}", re.S)
RE_CONST = re.compile(r'const (\w+): &\'static str = "([^"]*)";')
RE_SCOPE = re.compile(r"type Scope = crate::(\w+)ResourceScope;")
RE_LIST_KIND = re.compile(r'impl crate::ListableResource for (\w+) \{\s*const LIST_KIND: &\'static str = "([^"]+)";')


def parse_openapi():
    """Returns (types, resources): types maps (module dir, lower name) -> info."""
    types = {}
    resources = []
    for path in sorted(glob.glob(os.path.join(OPENAPI_SRC, "**", "*.rs"), recursive=True)):
        text = open(path, encoding="utf-8").read()
        rel_dir = os.path.relpath(os.path.dirname(path), OPENAPI_SRC)
        for m in RE_SCHEMA_IMPL.finditer(text):
            rust_name, definition = m.group(1), m.group(2)
            rust_path = "k8s_openapi::" + "::".join(rel_dir.split(os.sep)) + "::" + rust_name
            if rust_name == "WatchEvent":
                rust_path += "<k8s_openapi::apimachinery::pkg::runtime::RawExtension>"
            fields = RE_FIELD_NAME.findall(text)
            types[(rel_dir, rust_name.lower())] = {
                "definition": definition,
                "rust_path": rust_path,
                "json_fields": fields,
            }
        list_kinds = dict(RE_LIST_KIND.findall(text))
        for m in RE_RESOURCE.finditer(text):
            rust_name, body = m.group(1), m.group(2)
            consts = dict(RE_CONST.findall(body))
            scope = RE_SCOPE.search(body)
            info = types.get((rel_dir, rust_name.lower()))
            if info is None or scope is None:
                continue
            resources.append(
                [
                    consts["GROUP"],
                    consts["VERSION"],
                    consts["KIND"],
                    consts["URL_PATH_SEGMENT"],
                    {"Namespace": "Namespaced", "Cluster": "Cluster", "Sub": "Subresource"}[scope.group(1)],
                    list_kinds.get(rust_name, ""),
                    info["definition"],
                ]
            )
    return types, resources


# ---------------------------------------------------------------- k8s-pb

RE_PROST = re.compile(r"#\[prost\((.*?)\)\]", re.S)
RE_TAG = re.compile(r'tag\s*=\s*"(\d+)"')
RE_MAP = re.compile(r'(?:btree_map|map)\s*=\s*"([^"]+)"')
MARKERS = ("patchMergeKey", "patchStrategy", "listType", "listMapKey", "mapType", "structType")


def markers_of(doc_lines):
    found = {}
    for line in doc_lines:
        m = re.match(r"\s*\+(\w+)=(\S+)\s*$", line)
        if m and m.group(1) in MARKERS:
            found.setdefault(m.group(1), []).append(m.group(2))
    return found


def resolve_type(module, type_text):
    """`super::super::x::Y` relative to module (a list of path parts) -> (module parts, name)."""
    parts = type_text.split("::")
    base = list(module)
    while parts and parts[0] == "super":
        base.pop()
        parts.pop(0)
    return tuple(base + parts[:-1]), parts[-1]


def inner_type(ty):
    """Strips Option<>, Vec<>, Box<> wrappers; returns the innermost type path."""
    ty = re.sub(r"\s+", "", ty).replace(",>", ">")
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        if ty.startswith(wrapper) and ty.endswith(">"):
            return inner_type(ty[len(wrapper) : -1])
    return ty


def parse_pb_file(path, module):
    """Yields (name, doc markers, fields) for every message of one prost module."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    doc = []
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("///"):
            doc.append(line[3:])
            i += 1
            continue
        m = re.match(r"pub struct (\w+) \{", line)
        if not m:
            if not line.startswith("#["):
                doc = []
            i += 1
            continue
        name, struct_doc = m.group(1), doc
        doc = []
        if line.endswith("{}"):
            yield name, markers_of(struct_doc), []
            i += 1
            continue
        fields = []
        i += 1
        field_doc = []
        attr = ""
        while i < len(lines) and lines[i].strip() != "}":
            line = lines[i].strip()
            if line.startswith("///"):
                field_doc.append(line[3:])
                i += 1
                continue
            if line.startswith("#[prost("):
                attr = line
                while not attr.rstrip().endswith(")]"):
                    i += 1
                    attr += " " + lines[i].strip()
                i += 1
                continue
            m = re.match(r"pub (r#)?(\w+):\s*(.*)$", line)
            if m:
                ty = m.group(3)
                while not (ty.rstrip().endswith(",") and ty.count("<") == ty.count(">")):
                    i += 1
                    ty += lines[i].strip()
                fields.append(
                    {
                        "pb_name": m.group(2),
                        "attr": attr,
                        "type": ty.rstrip(",").strip(),
                        "markers": markers_of(field_doc),
                    }
                )
                field_doc = []
                attr = ""
            i += 1
        yield name, markers_of(struct_doc), fields
        i += 1


def pb_kind(module, field):
    """Wire kind string of one prost field (see the module doc)."""
    attr = RE_PROST.search(field["attr"]).group(1)
    first = attr.split(",")[0].strip().split("=")[0].strip()
    repeated = "repeated" in [a.strip() for a in attr.split(",")]
    if first in ("btree_map", "map"):
        key, value = [p.strip() for p in RE_MAP.search(attr).group(1).split(",")]
        if value == "message":
            ty = re.sub(r"\s+", "", field["type"]).replace(",>", ">")
            inner = ty[ty.rindex(",") + 1 : -1]
            value = ("msg", resolve_type(module, inner_type(inner)))
        return ("map", key, value), False
    if first == "message":
        return ("msg", resolve_type(module, inner_type(field["type"]))), repeated
    return first, repeated


# ---------------------------------------------------------------- join


def main():
    types, resources = parse_openapi()
    openapi_dirs = {d for (d, _) in types}
    prefix_of_dir = {}
    for (d, _), info in types.items():
        prefix_of_dir[d] = info["definition"].rsplit(".", 1)[0]

    # Every prost message in a module that k8s-openapi v1.33 also has.
    messages = {}
    for path in sorted(glob.glob(os.path.join(PB_SRC, "**", "mod.rs"), recursive=True)):
        rel_dir = os.path.relpath(os.path.dirname(path), PB_SRC)
        if rel_dir not in openapi_dirs and rel_dir != os.path.join("apimachinery", "pkg", "runtime"):
            continue
        module = tuple(rel_dir.split(os.sep))
        for name, struct_markers, fields in parse_pb_file(path, module):
            messages[(module, name)] = (struct_markers, fields)

    def definition_of(module, name):
        d = os.sep.join(module)
        info = types.get((d, name.lower()))
        if info:
            return info["definition"]
        prefix = prefix_of_dir.get(d) or "io.k8s." + ".".join(module).replace("_", "-")
        return prefix + "." + name

    def inlinable(key, json_by_norm, seen=()):
        """Message `key` is inlined in the parent's JSON: most of its fields (possibly nested
        inline) are JSON fields of the parent. "Most", not "all": k8s-pb (1.34) has fields that
        v1.33 lacks, e.g. EphemeralContainerCommon.restartPolicyRules."""
        sub = messages.get(key)
        if not sub or not sub[1] or key in seen:
            return False
        matched = 0
        for sf in sub[1]:
            kind, repeated = pb_kind(key[0], sf)
            if norm(sf["pb_name"]) in json_by_norm:
                matched += 1
            elif not repeated and isinstance(kind, tuple) and kind[0] == "msg" and inlinable(kind[1], json_by_norm, seen + (key,)):
                matched += 1
        return matched * 2 > len(sub[1])

    def kind_string(kind):
        if isinstance(kind, tuple):
            if kind[0] == "msg":
                return "m:" + definition_of(*kind[1])
            if kind[0] == "map":
                return "map:%s:%s" % (kind[1], kind_string(kind[2]))
        return kind

    def json_names_of(key):
        info = types.get((os.sep.join(key[0]), key[1].lower()))
        by_norm = {}
        if info:
            for jf in info["json_fields"]:
                by_norm.setdefault(norm(jf), jf)
        return info, by_norm

    # Pass 1: which messages are inlined into which parents. An inlined message without a
    # schema of its own (VolumeSource) takes its JSON names from the parent (downwardAPI, not
    # downwardApi).
    inline_names = {}  # message key -> JSON names (by norm) of the parent(s) it is inlined in
    inline_fields = {}  # (message key, pb field name) -> inlined message key

    def find_inlines(key, by_norm, seen=()):
        if key in seen:
            return
        for field in messages[key][1]:
            kind, repeated = pb_kind(key[0], field)
            if norm(field["pb_name"]) in by_norm or repeated:
                continue
            if isinstance(kind, tuple) and kind[0] == "msg" and inlinable(kind[1], by_norm):
                inline_fields[(key, field["pb_name"])] = kind[1]
                inline_names.setdefault(kind[1], {}).update(by_norm)
                find_inlines(kind[1], by_norm, seen + (key,))

    for key in sorted(messages):
        info, by_norm = json_names_of(key)
        if info:
            find_inlines(key, by_norm)

    # Pass 2: the protobuf table and the field extensions of every message.
    tables = {}
    exts = {}
    unmatched = []
    for key, (struct_markers, fields) in sorted(messages.items()):
        info, by_norm = json_names_of(key)
        if not info:
            by_norm = inline_names.get(key, {})
        table = []
        ext = {}
        for field in fields:
            kind, repeated = pb_kind(key[0], field)
            if (key, field["pb_name"]) in inline_fields:
                json_name = ""
            else:
                json_name = by_norm.get(norm(field["pb_name"]))
            if json_name is None:
                parts = field["pb_name"].split("_")
                json_name = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
                if info:
                    unmatched.append("%s.%s" % (info["definition"], field["pb_name"]))
            table.append([int(RE_TAG.search(field["attr"]).group(1)), json_name, kind_string(kind), 1 if repeated else 0])
            mk = field["markers"]
            fx = {}
            if "patchStrategy" in mk:
                fx["x-kubernetes-patch-strategy"] = mk["patchStrategy"][0]
            if "patchMergeKey" in mk:
                fx["x-kubernetes-patch-merge-key"] = mk["patchMergeKey"][0]
            if "listType" in mk:
                fx["x-kubernetes-list-type"] = mk["listType"][0]
            if "listMapKey" in mk:
                fx["x-kubernetes-list-map-keys"] = mk["listMapKey"]
            if "mapType" in mk:
                fx["x-kubernetes-map-type"] = mk["mapType"][0]
            if "structType" in mk:
                fx["x-kubernetes-map-type"] = mk["structType"][0]
            if fx and json_name:
                ext[json_name] = fx
        tables[key] = table
        exts[key] = ext

    def all_ext(key, seen=()):
        """Field extensions of a message including those of messages inlined into it."""
        merged = {}
        if key in seen:
            return merged
        for field in messages[key][1]:
            sub = inline_fields.get((key, field["pb_name"]))
            if sub:
                merged.update(all_ext(sub, seen + (key,)))
        merged.update(exts[key])
        return merged

    definitions = {}
    for key, (struct_markers, _) in sorted(messages.items()):
        entry = {}
        ext = all_ext(key)
        if ext:
            entry["x"] = ext
        if "structType" in struct_markers:
            entry["dx"] = {"x-kubernetes-map-type": struct_markers["structType"][0]}
        entry["pb"] = tables[key]
        definitions[definition_of(*key)] = entry

    os.makedirs(os.path.dirname(OUT_JSON), exist_ok=True)
    with open(OUT_JSON, "w", encoding="utf-8") as f:
        json.dump({"definitions": definitions, "resources": resources}, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")

    os.makedirs(os.path.dirname(OUT_TYPES), exist_ok=True)
    with open(OUT_TYPES, "w", encoding="utf-8") as f:
        f.write("// @generated by translator/gen/catalog.py from k8s-openapi 0.29.0 (v1_33). Do not edit.\n")
        f.write("//! Every k8s-openapi v1.33 type that has a JSON schema.\n\n")
        f.write("use schemars::SchemaGenerator;\n\n")
        f.write("/// Registers the schema of every built-in definition in `generator`.\n")
        f.write("#[rustfmt::skip]\n")
        f.write("pub(super) fn register_all(generator: &mut SchemaGenerator) {\n")
        for key in sorted(types, key=lambda k: types[k]["definition"]):
            f.write("    generator.subschema_for::<%s>();\n" % types[key]["rust_path"])
        f.write("}\n")

    print(
        "%d definitions with protobuf tables, %d schema types, %d resources, %d unmatched protobuf fields"
        % (len(definitions), len(types), len(resources), len(unmatched)),
        file=sys.stderr,
    )
    for u in unmatched:
        print("  unmatched (camelCased): " + u, file=sys.stderr)


if __name__ == "__main__":
    main()
