# Helpers for the general-* rules (embedded in their templates' `libs` after pods.rego): every container with
# the field it sits in and its path in the reviewed object, so messages name the container and the field.
package lib.secstack.general

import rego.v1

import data.lib.secstack.pods

singular := {"containers": "container", "initContainers": "initContainer", "ephemeralContainers": "ephemeralContainer"}

# Where the pod spec sits in the reviewed object, for messages (`spec.template.spec` for a Deployment ...).
# Paths are built only for messages, so a rule that reports nothing never pays for them.
spec_path := _spec_paths[data.lib.secstack.pods.reviewed.kind]

_spec_paths := {
	"Pod": "spec", "CronJob": "spec.jobTemplate.spec.template.spec", "PodTemplate": "template.spec",
	"Deployment": "spec.template.spec", "StatefulSet": "spec.template.spec", "DaemonSet": "spec.template.spec",
	"ReplicaSet": "spec.template.spec", "ReplicationController": "spec.template.spec", "Job": "spec.template.spec",
}

# {container, field ("containers" ...), index, type ("container" | "initContainer" | "ephemeralContainer"), name}
entries contains entry if {
	some field in data.lib.secstack.pods.container_fields
	is_array(data.lib.secstack.pods.spec[field])
	some i, c in data.lib.secstack.pods.spec[field]
	is_object(c)
	entry := {
		"container": c,
		"field": field,
		"index": i,
		"type": singular[field],
		"name": data.lib.secstack.pods.name(c),
	}
}

# The entry's container in the reviewed object, e.g. spec.template.spec.containers[0].
path(entry) := sprintf("%s.%s[%d]", [spec_path, entry.field, entry.index])

# Entries whose image is not exempt (gatekeeper-library exemptImages semantics).
checked contains entry if {
	some entry in entries
	not data.lib.secstack.pods.exempt(entry.container)
}

# Pod-level fields (automount, labels) are exempt only when every container of the pod is exempt.
pod_exempt if {
	count(data.lib.secstack.pods.containers) > 0
	every c in data.lib.secstack.pods.containers {
		data.lib.secstack.pods.exempt(c)
	}
}

image(c) := c.image if is_string(c.image)

image(c) := "" if not is_string(c.image)

# An image reference split into its parts. The tag is the `:suffix` of the last path segment (so a registry
# port such as `host:443/app` is not a tag); a digest follows `@`.
reference(img) := {"name": name, "tag": tag, "digest": digest} if {
	parts := split(img, "@")
	name_tag := parts[0]
	digest := concat("@", array.slice(parts, 1, count(parts)))
	segments := split(name_tag, "/")
	last := segments[count(segments) - 1]
	colon := indexof(last, ":")
	tag := _tag(last, colon)
	name := _name(name_tag, last, colon)
}

_tag(_, colon) := "" if colon < 0

_tag(last, colon) := substring(last, colon + 1, -1) if colon >= 0

_name(name_tag, _, colon) := name_tag if colon < 0

_name(name_tag, last, colon) := substring(name_tag, 0, (count(name_tag) - count(last)) + colon) if colon >= 0

# Params that must be lists of strings: anything else counts as empty, so a typo cannot crash evaluation.
string_list(key) := strings if {
	value := data.lib.secstack.pods.param(key, [])
	is_array(value)
	strings := [s | some s in value; is_string(s)]
}

string_list(key) := [] if not is_array(data.lib.secstack.pods.param(key, []))

# Where the pod template {metadata, spec} sits, for messages about its labels.
template_path := trim_suffix(spec_path, ".spec") if data.lib.secstack.pods.reviewed.kind != "Pod"

# A Kubernetes resource quantity ("100m", "1Gi", 2, "1e3") as a number; undefined when it is not one.
quantity(q) := q if is_number(q)

# Plain digits with an optional unit ("500m", "256Mi") are checked without a regex (compiled per call).
quantity(q) := units.parse(q) if {
	is_string(q)
	_plain_quantity(q)
}

quantity(q) := units.parse(q) if {
	is_string(q)
	not _plain_quantity(q)
	regex.match(`^\+?([0-9]+(\.[0-9]+)?|\.[0-9]+)([KMGTPE]i|[mkKMGTPE]|[eE][+-]?[0-9]+)?$`, q)
}

_plain_quantity(q) if {
	digits := trim_right(q, "KMGTPEkmi")
	digits != ""
	trim_left(digits, "0123456789") == ""
	substring(q, count(digits), -1) in _units
}

_units := {"", "m", "k", "K", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}

# Containers that may carry resources and probes: the API rejects both on ephemeral containers.
resourced contains entry if {
	some entry in checked
	entry.field != "ephemeralContainers"
}

# K8sContainerLimits / K8sContainerRequests: each of cpu and memory must be set on every container and, when the
# parameter gives a maximum, be at most that. A parameter of "-1" turns that resource off (gatekeeper-library).
resource_messages(section) := ((_missing(section) | _unparsable(section)) | _bad_maximum(section)) | _too_high(section)

_singular_section := {"limits": "limit", "requests": "request"}

_enforced contains resource if {
	some resource in ["cpu", "memory"]
	not data.lib.secstack.pods.param(resource, "") in {"-1", -1}
}

_resource_value(entry, section, resource) := entry.container.resources[section][resource] if {
	is_object(entry.container.resources)
	is_object(entry.container.resources[section])
}

_missing(section) := {msg |
	some resource in _enforced
	some entry in resourced
	not _resource_value(entry, section, resource)
	msg := sprintf("%s <%s> has no %s %s; set %s.resources.%s.%s", [
		entry.type, entry.name, resource, _singular_section[section], path(entry), section, resource,
	])
}

_unparsable(section) := {msg |
	some resource in _enforced
	some entry in resourced
	value := _resource_value(entry, section, resource)
	not quantity(value)
	msg := sprintf("%s <%s> %s %s <%v> could not be parsed (%s.resources.%s.%s)", [
		entry.type, entry.name, resource, _singular_section[section], value, path(entry), section, resource,
	])
}

_bad_maximum(section) := {msg |
	some resource in _enforced
	maximum := data.lib.secstack.pods.param(resource, "")
	maximum != ""
	not quantity(maximum)
	count(resourced) > 0
	msg := sprintf("parameter %s <%v> is not a Kubernetes quantity, so %s %ss cannot be checked", [
		resource, maximum, resource, _singular_section[section],
	])
}

_too_high(section) := {msg |
	some resource in _enforced
	maximum := data.lib.secstack.pods.param(resource, "")
	some entry in resourced
	value := _resource_value(entry, section, resource)
	quantity(value) > quantity(maximum)
	msg := sprintf("%s <%s> %s %s <%v> is higher than the maximum allowed of <%v> (%s.resources.%s.%s)", [
		entry.type, entry.name, resource, _singular_section[section], value, maximum, path(entry), section, resource,
	])
}

# K8sBlockNodePort / K8sBlockLoadBalancer opt-out: the annotation named by `allowAnnotation` (default
# secstack.io/allow-external; "" turns the opt-out off) with a non-empty reason as its value.
allow_annotation := data.lib.secstack.pods.param("allowAnnotation", "secstack.io/allow-external")

allowed_external if {
	is_string(allow_annotation)
	allow_annotation != ""
	reason := data.lib.secstack.pods.reviewed.metadata.annotations[allow_annotation]
	is_string(reason)
	trim_space(reason) != ""
}

allow_hint := sprintf(`annotate it %s: "<reason>" if it must be reachable from outside the cluster`, [allow_annotation]) if {
	is_string(allow_annotation)
	allow_annotation != ""
}

allow_hint := "this constraint allows no exceptions" if not _opt_out_enabled

_opt_out_enabled if {
	is_string(allow_annotation)
	allow_annotation != ""
}

service_name := data.lib.secstack.pods.object_name
