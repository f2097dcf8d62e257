{{- define "ssmd-operator.name" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ssmd-operator.labels" -}}
app.kubernetes.io/name: ssmd-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ssmd-operator.selector" -}}
app.kubernetes.io/name: ssmd-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ssmd-operator.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "ssmd-operator.name" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{/* The namespaced permissions; the same rules go into a ClusterRole or per-namespace Roles. */}}
{{- define "ssmd-operator.namespacedRules" -}}
# The resources the operator reconciles: read, watch, finalizers/annotations (patch),
# status; Keys are also created for the keys an Environment names.
- apiGroups: [ssmd.io]
  resources: [ssmdenvironments, ssmdfeeds, ssmdkeys]
  verbs: [get, list, watch, patch, update]
- apiGroups: [ssmd.io]
  resources: [ssmdkeys]
  verbs: [create]
- apiGroups: [ssmd.io]
  resources: [ssmdenvironments/status, ssmdfeeds/status, ssmdkeys/status]
  verbs: [get, patch, update]
# Children: rendered environment + immutable version ConfigMaps (listed by label, pruned).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, create, update, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, update, patch, delete]
# The archive claim is created, never changed or deleted by the operator (data is kept).
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create]
# Secrets: the transport credentials for NATS (get), the Key status (field names only, via a
# label-filtered watch).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [bitnami.com]
  resources: [sealedsecrets]
  verbs: [get, create, update]
# Kubernetes Events for every step (kopf posts them).
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if gt (int .Values.replicaCount) 1 }}
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end -}}
