{{/* Names and labels. */}}
{{- define "phimask.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "phimask.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* agent (sidecar mode: the log-agent pods) or aggregator. */}}
{{- define "phimask.component" -}}
{{- if eq .Values.mode "sidecar" }}agent{{ else }}aggregator{{ end -}}
{{- end -}}

{{- define "phimask.selectorLabels" -}}
app.kubernetes.io/name: {{ include "phimask.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ include "phimask.component" . }}
{{- end -}}

{{- define "phimask.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "phimask.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: phimask
{{- end -}}

{{- define "phimask.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "phimask.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "phimask.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where things are mounted in the phimask container. */}}
{{- define "phimask.policyDir" -}}/etc/phimask/policy{{- end -}}
{{- define "phimask.keysDir" -}}/etc/phimask/keys{{- end -}}
{{- define "phimask.tlsDir" -}}/etc/phimask/tls{{- end -}}
{{- define "phimask.clientCADir" -}}/etc/phimask/client-ca{{- end -}}
{{- define "phimask.accessDir" -}}/etc/phimask/access{{- end -}}
{{- define "phimask.forwardTLSDir" -}}/etc/phimask/forward-tls{{- end -}}
{{- define "phimask.stateDir" -}}/var/lib/phimask{{- end -}}
{{/* Where the agent finds what it needs to call phimask over TLS. */}}
{{- define "phimask.agentTLSDir" -}}/etc/phimask-client{{- end -}}
{{- define "phimask.agentDataDir" -}}/var/lib/phimask-agent{{- end -}}

{{- define "phimask.keysSecretName" -}}
{{- if .Values.keys.create -}}
{{- printf "%s-keys" (include "phimask.fullname" .) -}}
{{- else -}}
{{- .Values.keys.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "phimask.policyConfigMapName" -}}
{{- default (printf "%s-policy" (include "phimask.fullname" .)) .Values.policy.existingConfigMap -}}
{{- end -}}

{{- define "phimask.accessEnabled" -}}
{{- if or .Values.access.existingConfigMap .Values.access.callers }}true{{ end -}}
{{- end -}}

{{- define "phimask.accessConfigMapName" -}}
{{- default (printf "%s-access" (include "phimask.fullname" .)) .Values.access.existingConfigMap -}}
{{- end -}}

{{- define "phimask.clientCASecret" -}}
{{- default .Values.tls.existingSecret .Values.tls.clientCASecret -}}
{{- end -}}

{{/* The address the agent dials: phimask listens on 0.0.0.0, which holds loopback. */}}
{{- define "phimask.connectHost" -}}127.0.0.1{{- end -}}

{{- define "phimask.serverName" -}}
{{- default (printf "%s.%s.svc" (include "phimask.fullname" .) .Release.Namespace) .Values.tls.serverName -}}
{{- end -}}

{{/* sidecar mode: does the masked stream come back to the agent? ("true" or "") */}}
{{- define "phimask.returnToAgent" -}}
{{- if eq .Values.mode "sidecar" -}}
{{- if and (eq .Values.shipper "fluent-bit") (not .Values.downstream.otlp) }}true{{ end -}}
{{- if and (eq .Values.shipper "vector") (not .Values.downstream.vector) }}true{{ end -}}
{{- end -}}
{{- end -}}

{{- define "phimask.otlpDownstream" -}}
{{- if .Values.downstream.otlp -}}
{{- .Values.downstream.otlp -}}
{{- else if and (include "phimask.returnToAgent" .) (eq .Values.shipper "fluent-bit") -}}
{{- printf "http://127.0.0.1:%v" .Values.agent.fluentBit.returnPort -}}
{{- end -}}
{{- end -}}

{{- define "phimask.vectorDownstream" -}}
{{- if .Values.downstream.vector -}}
{{- .Values.downstream.vector -}}
{{- else if and (include "phimask.returnToAgent" .) (eq .Values.shipper "vector") -}}
{{- printf "http://127.0.0.1:%v" .Values.agent.vector.returnPort -}}
{{- end -}}
{{- end -}}

{{/* The port of a URL (explicit, else the scheme's default). */}}
{{- define "phimask.urlPort" -}}
{{- $url := urlParse . -}}
{{- $parts := splitList ":" $url.host -}}
{{- if gt (len $parts) 1 -}}
{{- last $parts -}}
{{- else if eq $url.scheme "https" -}}443
{{- else -}}80
{{- end -}}
{{- end -}}

{{/* A value as text; whole numbers without an exponent (values arrive as float64). */}}
{{- define "phimask.scalar" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) -}}
{{- int64 . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* Checks that a schema cannot express. Included by every workload. */}}
{{- define "phimask.validate" -}}
{{- if and (eq .Values.mode "aggregator") (not (or .Values.downstream.otlp .Values.downstream.vector)) -}}
{{- fail "mode aggregator: set downstream.otlp and/or downstream.vector (where masked records go)" -}}
{{- end -}}
{{- if eq .Values.mode "sidecar" -}}
{{- $tag := .Values.agent.fluentBit.image.tag -}}
{{- if and (eq .Values.shipper "fluent-bit") (regexMatch "^v?[0-9]+\\.[0-9]+\\.[0-9]+$" $tag) (not (semverCompare ">=4.2.3" $tag)) -}}
{{- fail (printf "agent.fluentBit.image.tag %s: Fluent Bit before 4.2.3 ignores grpc-status and counts refused batches as delivered; use >= 4.2.3" $tag) -}}
{{- end -}}
{{- $ports := list (int .Values.phimask.port) -}}
{{- if .Values.metrics.enabled }}{{ $ports = append $ports (int .Values.metrics.port) }}{{ end -}}
{{- if eq .Values.shipper "fluent-bit" -}}
{{- $ports = concat $ports (list (int .Values.agent.fluentBit.returnPort) (int .Values.agent.fluentBit.httpPort)) -}}
{{- else -}}
{{- $ports = concat $ports (list (int .Values.agent.vector.returnPort) (int .Values.agent.vector.apiPort)) -}}
{{- end -}}
{{- if ne (len $ports) (len (uniq $ports)) -}}
{{- fail (printf "ports collide in the agent pod: %v (phimask.port, metrics.port and the agent's ports must differ)" $ports) -}}
{{- end -}}
{{- else if and .Values.metrics.enabled (eq (int .Values.phimask.port) (int .Values.metrics.port)) -}}
{{- fail "phimask.port and metrics.port must differ" -}}
{{- end -}}
{{- end -}}

{{/* phimask's command line: what the container runs after the image's ENTRYPOINT. */}}
{{- define "phimask.args" -}}
- serve
- --listen
- {{ printf "0.0.0.0:%v" .Values.phimask.port | quote }}
{{- if .Values.tls.enabled }}
- --tls-cert-file
- {{ printf "%s/%s" (include "phimask.tlsDir" .) .Values.tls.certKey | quote }}
- --tls-key-file
- {{ printf "%s/%s" (include "phimask.tlsDir" .) .Values.tls.keyKey | quote }}
{{- if .Values.tls.mutual }}
- --tls-client-ca-file
{{- if .Values.tls.clientCASecret }}
- {{ printf "%s/%s" (include "phimask.clientCADir" .) .Values.tls.caKey | quote }}
{{- else }}
- {{ printf "%s/%s" (include "phimask.tlsDir" .) .Values.tls.caKey | quote }}
{{- end }}
{{- end }}
{{- else }}
- --allow-plaintext
- "true"
{{- end }}
- --policy
- {{ printf "%s/%s" (include "phimask.policyDir" .) .Values.policy.key | quote }}
- --keys-dir
- {{ include "phimask.keysDir" . | quote }}
- --state-dir
- {{ include "phimask.stateDir" . | quote }}
{{- if include "phimask.accessEnabled" . }}
- --access-file
- {{ printf "%s/access.yaml" (include "phimask.accessDir" .) | quote }}
{{- end }}
{{- if .Values.metrics.enabled }}
- --metrics-listen
- {{ printf "0.0.0.0:%v" .Values.metrics.port | quote }}
{{- end }}
{{- with include "phimask.otlpDownstream" . }}
- --otlp-downstream
- {{ . | quote }}
{{- end }}
{{- with include "phimask.vectorDownstream" . }}
- --vector-downstream
- {{ . | quote }}
{{- end }}
{{- with .Values.downstream.tls.existingSecret }}
- --forward-ca-file
- {{ printf "%s/%s" (include "phimask.forwardTLSDir" $) $.Values.downstream.tls.caKey | quote }}
{{- if and $.Values.downstream.tls.certKey $.Values.downstream.tls.keyKey }}
- --forward-cert-file
- {{ printf "%s/%s" (include "phimask.forwardTLSDir" $) $.Values.downstream.tls.certKey | quote }}
- --forward-key-file
- {{ printf "%s/%s" (include "phimask.forwardTLSDir" $) $.Values.downstream.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "phimask.env" -}}
{{- range $name, $value := .Values.phimask.settings }}
- name: {{ printf "PHIMASK_%s" (upper $name) }}
  value: {{ include "phimask.scalar" $value | quote }}
{{- end }}
# The same directories as the flags, for `kubectl exec ... phimask audit verify` etc.
- name: PHIMASK_STATE_DIR
  value: {{ include "phimask.stateDir" . | quote }}
- name: PHIMASK_KEYS_DIR
  value: {{ include "phimask.keysDir" . | quote }}
{{- if .Values.vault.postgres.enabled }}
- name: PHIMASK_VAULT_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.vault.postgres.existingSecret }}
      key: {{ .Values.vault.postgres.key }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ .Values.otel.serviceName | quote }}
{{- with .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.otel.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ . | quote }}
{{- end }}
{{- with .Values.otel.tracesSampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.namespace}
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef: {fieldPath: spec.nodeName}
- name: K8S_POD_UID
  valueFrom:
    fieldRef: {fieldPath: metadata.uid}
- name: K8S_CONTAINER_NAME
  value: phimask
{{- with .Values.phimask.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* kubelet's gRPC probes cannot do TLS: with TLS on, a TCP connect is the probe. */}}
{{- define "phimask.probeAction" -}}
{{- if .Values.tls.enabled -}}
tcpSocket:
  port: {{ .Values.phimask.port }}
{{- else -}}
grpc:
  port: {{ .Values.phimask.port }}
{{- end -}}
{{- end -}}

{{- define "phimask.probes" -}}
{{- $p := .Values.phimask.probes -}}
startupProbe:
  {{- include "phimask.probeAction" . | nindent 2 }}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.startupFailureThreshold }}
livenessProbe:
  {{- include "phimask.probeAction" . | nindent 2 }}
  initialDelaySeconds: {{ $p.initialDelaySeconds }}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
readinessProbe:
  {{- include "phimask.probeAction" . | nindent 2 }}
  initialDelaySeconds: {{ $p.initialDelaySeconds }}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
{{- end -}}

{{/* The phimask container. Pass (dict "root" $ "sidecar" true) for a native sidecar. */}}
{{- define "phimask.container" -}}
{{- $ := .root -}}
- name: phimask
  image: {{ include "phimask.image" $ | quote }}
  imagePullPolicy: {{ $.Values.image.pullPolicy }}
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    {{- include "phimask.args" $ | trim | nindent 4 }}
  env:
    {{- include "phimask.env" $ | trim | nindent 4 }}
  ports:
    - name: grpc
      containerPort: {{ $.Values.phimask.port }}
      protocol: TCP
    {{- if $.Values.metrics.enabled }}
    - name: metrics
      containerPort: {{ $.Values.metrics.port }}
      protocol: TCP
    {{- end }}
  {{- include "phimask.probes" $ | nindent 2 }}
  resources:
    {{- toYaml $.Values.phimask.resources | nindent 4 }}
  securityContext:
    {{- toYaml $.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: phimask-policy
      mountPath: {{ include "phimask.policyDir" $ }}
      readOnly: true
    - name: phimask-keys
      mountPath: {{ include "phimask.keysDir" $ }}
      readOnly: true
    {{- if $.Values.tls.enabled }}
    - name: phimask-tls
      mountPath: {{ include "phimask.tlsDir" $ }}
      readOnly: true
    {{- if and $.Values.tls.mutual $.Values.tls.clientCASecret }}
    - name: phimask-client-ca
      mountPath: {{ include "phimask.clientCADir" $ }}
      readOnly: true
    {{- end }}
    {{- end }}
    {{- if include "phimask.accessEnabled" $ }}
    - name: phimask-access
      mountPath: {{ include "phimask.accessDir" $ }}
      readOnly: true
    {{- end }}
    {{- if $.Values.downstream.tls.existingSecret }}
    - name: phimask-forward-tls
      mountPath: {{ include "phimask.forwardTLSDir" $ }}
      readOnly: true
    {{- end }}
    - name: phimask-state
      mountPath: {{ include "phimask.stateDir" $ }}
    - name: phimask-tmp
      mountPath: /tmp
{{- end -}}

{{/* The phimask container's volumes. */}}
{{- define "phimask.volumes" -}}
- name: phimask-policy
  configMap:
    name: {{ include "phimask.policyConfigMapName" . }}
    items:
      - {key: {{ .Values.policy.key | quote }}, path: {{ .Values.policy.key | quote }}}
- name: phimask-keys
  secret:
    secretName: {{ include "phimask.keysSecretName" . }}
    defaultMode: 0440
{{- if .Values.tls.enabled }}
- name: phimask-tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ .Values.tls.certKey | quote }}, path: {{ .Values.tls.certKey | quote }}}
      - {key: {{ .Values.tls.keyKey | quote }}, path: {{ .Values.tls.keyKey | quote }}}
      {{- if and .Values.tls.mutual (not .Values.tls.clientCASecret) }}
      - {key: {{ .Values.tls.caKey | quote }}, path: {{ .Values.tls.caKey | quote }}}
      {{- end }}
{{- if and .Values.tls.mutual .Values.tls.clientCASecret }}
- name: phimask-client-ca
  secret:
    secretName: {{ .Values.tls.clientCASecret }}
    defaultMode: 0440
    items:
      - {key: {{ .Values.tls.caKey | quote }}, path: {{ .Values.tls.caKey | quote }}}
{{- end }}
{{- end }}
{{- if include "phimask.accessEnabled" . }}
- name: phimask-access
  configMap:
    name: {{ include "phimask.accessConfigMapName" . }}
    items:
      - {key: access.yaml, path: access.yaml}
{{- end }}
{{- with .Values.downstream.tls }}
{{- if .existingSecret }}
- name: phimask-forward-tls
  secret:
    secretName: {{ .existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ .caKey | quote }}, path: {{ .caKey | quote }}}
      {{- if and .certKey .keyKey }}
      - {key: {{ .certKey | quote }}, path: {{ .certKey | quote }}}
      - {key: {{ .keyKey | quote }}, path: {{ .keyKey | quote }}}
      {{- end }}
{{- end }}
{{- end }}
- name: phimask-state
  emptyDir:
    sizeLimit: {{ .Values.stateDir.sizeLimit }}
- name: phimask-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/* grpcurl's TLS options for NOTES.txt. */}}
{{- define "phimask.grpcurlTLS" -}}
{{- if .Values.tls.enabled -}}
-cacert ca.crt -authority {{ include "phimask.serverName" . }} {{ if .Values.tls.mutual }}-cert client.crt -key client.key {{ end }}
{{- else -}}
-plaintext {{ end -}}
{{- end -}}

{{/* Pod-level settings shared by both workloads. */}}
{{- define "phimask.podCommon" -}}
serviceAccountName: {{ include "phimask.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
