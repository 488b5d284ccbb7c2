# Shared pod-spec lookup for every secstack ConstraintTemplate (embedded in each template's `libs`).
# One place knows where the pod template lives in each workload kind, so a rule written once catches a bad
# Deployment, CronJob ... at preview time as well as the Pod it would create.
package lib.secstack.pods

import rego.v1

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

container_fields := ["containers", "initContainers", "ephemeralContainers"]

reviewed := input.review.object

# The pod template {metadata, spec} of the reviewed object; undefined for objects that carry no pod.
pod := {"metadata": object.get(reviewed, "metadata", {}), "spec": reviewed.spec} if {
    reviewed.kind == "Pod"
}

pod := reviewed.spec.template if {
    reviewed.kind in workload_kinds
}

pod := reviewed.spec.jobTemplate.spec.template if {
    reviewed.kind == "CronJob"
}

pod := reviewed.template if {
    reviewed.kind == "PodTemplate"
}

spec := pod.spec if is_object(pod.spec)

metadata := pod.metadata if is_object(pod.metadata)

metadata := {} if not is_object(pod.metadata)

annotations := metadata.annotations if is_object(metadata.annotations)

annotations := {} if not is_object(metadata.annotations)

# Name of the object reviewed (the workload, not its pods), for messages.
object_name := reviewed.metadata.name if is_string(reviewed.metadata.name)

object_name := "<unnamed>" if not is_string(reviewed.metadata.name)

# Every container of the pod: containers, initContainers and ephemeralContainers.
containers contains c if {
    some field in container_fields
    is_array(spec[field])
    some c in spec[field]
    is_object(c)
}

name(c) := c.name if is_string(c.name)

name(c) := "<unnamed>" if not is_string(c.name)

pod_security_context := spec.securityContext if is_object(spec.securityContext)

pod_security_context := {} if not is_object(spec.securityContext)

security_context(c) := c.securityContext if is_object(c.securityContext)

security_context(c) := {} if not is_object(c.securityContext)

# A pod's security fields are immutable, so an UPDATE of a Pod cannot change them (gatekeeper-library skips it);
# a workload's pod template can change on UPDATE, so workloads are always checked.
skip if {
    input.review.operation == "UPDATE"
    reviewed.kind == "Pod"
}

windows if spec.os.name == "windows"

# gatekeeper-library exemptImages semantics: exact match, or prefix match for an entry ending in `*`.
exempt(c) if {
    some pattern in exempt_patterns
    image_matches(pattern, c.image)
}

# A rule, so the parameter is read once per evaluation rather than once per container.
exempt_patterns := patterns if {
    is_object(input.parameters)
    patterns := object.get(input.parameters, "exemptImages", [])
    is_array(patterns)
}

image_matches(pattern, image) if {
    is_string(pattern)
    is_string(image)
    not endswith(pattern, "*")
    pattern == image
}

image_matches(pattern, image) if {
    is_string(pattern)
    is_string(image)
    endswith(pattern, "*")
    startswith(image, trim_suffix(pattern, "*"))
}

# Containers a rule must check: every container whose image is not exempt.
checked contains c if {
    some c in containers
    not exempt(c)
}

# Parameter lookup that tolerates a missing or non-object parameters block.
param(key, default_value) := value if {
    is_object(input.parameters)
    value := object.get(input.parameters, key, default_value)
}

param(_, default_value) := default_value if not is_object(input.parameters)
