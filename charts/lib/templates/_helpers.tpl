{{/*
auditrail-lib: the templates every service chart of auditrail shares.
Each takes a dict: "root" (the calling chart's top context) and
"component" (ingestor, indexer, query, provisioner, reporter, console).
*/}}

{{/* The name of a component's objects: <release>-<component>. */}}
{{- define "auditrail.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "auditrail.selectorLabels" -}}
app.kubernetes.io/name: auditrail
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "auditrail.labels" -}}
{{ include "auditrail.selectorLabels" . }}
app.kubernetes.io/part-of: auditrail
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | default .root.Chart.Version | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The one image of every workload: repository@digest, else repository:tag (tag defaults to the chart's appVersion). */}}
{{- define "auditrail.image" -}}
{{- $img := .root.Values.global.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "auditrail.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .root.Values.global.securityContext.runAsUser }}
runAsGroup: {{ .root.Values.global.securityContext.runAsGroup }}
fsGroup: {{ .root.Values.global.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- with .root.Values.global.securityContext.supplementalGroups }}
supplementalGroups: {{ toJson . }}
{{- end }}
{{- end -}}

{{- define "auditrail.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The gRPC and metrics ports of a component, from global.ports. */}}
{{- define "auditrail.grpcPort" -}}
{{- index .root.Values.global.ports .component "grpc" -}}
{{- end -}}
{{- define "auditrail.metricsPort" -}}
{{- index .root.Values.global.ports .component "metrics" -}}
{{- end -}}

{{/*
Liveness and readiness on the gRPC health service (grpc.health.v1), by
Kubernetes' native grpc probe, asking for the component's own entry. The
probe speaks plaintext only: with TLS on, a TCP probe of the same port.
*/}}
{{- define "auditrail.probes" -}}
{{- $port := include "auditrail.grpcPort" . | int -}}
{{- $p := .root.Values.global.probes -}}
{{- range $kind := list "readinessProbe" "livenessProbe" }}
{{ $kind }}:
  {{- if $.root.Values.global.tls.enabled }}
  tcpSocket:
    port: {{ $port }}
  {{- else }}
  grpc:
    port: {{ $port }}
    service: {{ $.component }}
  {{- end }}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
  {{- if eq $kind "livenessProbe" }}
  initialDelaySeconds: {{ $p.livenessInitialDelaySeconds }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
The console's probes: its HTTP server (pages, JSON API) answers GET
/healthz with "ok" on the port named http; plain HTTP whatever
global.tls says (its gRPC port serves only health and reflection).
*/}}
{{- define "auditrail.httpProbes" -}}
{{- $p := .root.Values.global.probes -}}
{{- range $kind := list "readinessProbe" "livenessProbe" }}
{{ $kind }}:
  httpGet:
    path: /healthz
    port: http
    scheme: HTTP
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
  {{- if eq $kind "livenessProbe" }}
  initialDelaySeconds: {{ $p.livenessInitialDelaySeconds }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "auditrail.prometheusAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "auditrail.metricsPort" . | quote }}
prometheus.io/path: /metrics
{{- end -}}

{{/*
Where the certificates come from, with global.tls.enabled: "certManager"
(tls.certManager.enabled), "existing" (any of tls.existingSecrets set), or
"generated" (the umbrella chart's tls-generated.yaml: genCA and
genSignedCert at install, reused by helm upgrade through lookup). "off"
without TLS.
*/}}
{{- define "auditrail.tlsMode" -}}
{{- $tls := .root.Values.global.tls -}}
{{- if not $tls.enabled -}}
off
{{- else if $tls.certManager.enabled -}}
certManager
{{- else if (values $tls.existingSecrets | compact) -}}
existing
{{- else -}}
generated
{{- end -}}
{{- end -}}

{{/* The Secret (tls.crt, tls.key, ca.crt) of a component ("test": the helm test pods' client certificate). */}}
{{- define "auditrail.tlsSecretName" -}}
{{- $tls := .root.Values.global.tls -}}
{{- if eq (include "auditrail.tlsMode" .) "existing" -}}
{{- $name := index $tls.existingSecrets .component -}}
{{- if and (eq .component "test") (not $name) -}}
{{- $name = index $tls.existingSecrets "indexer" -}}
{{- end -}}
{{- required (printf "global.tls.existingSecrets.%s: the Secret (tls.crt, tls.key, ca.crt) of the %s, needed once any existing Secret is given (and without global.tls.certManager.enabled)" .component .component) $name -}}
{{- else -}}
{{- printf "%s-tls" (include "auditrail.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The DNS names a component's Service is reached by, and localhost (through kubectl port-forward): its certificate's SANs (the first is also its identity as a client). */}}
{{- define "auditrail.dnsNames" -}}
{{- $name := include "auditrail.fullname" . -}}
{{- $ns := .root.Release.Namespace -}}
{{- list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.%s" $name $ns .root.Values.global.clusterDomain) "localhost" | toJson -}}
{{- end -}}

{{/* "true" when the component requires client certificates (mTLS, [server.tls] client_ca). */}}
{{- define "auditrail.requiresClientCert" -}}
{{- if and .root.Values.global.tls.enabled (has .component .root.Values.global.tls.clientCertificates) -}}
true
{{- end -}}
{{- end -}}

{{/*
"true" when the console presents its own certificate to the services it
calls ([console.client] tls_cert, tls_key): with TLS, once one of them
(query, reporter, ingestor, indexer) requires client certificates. Such a
server takes the certificate as the caller, unless it names
<release>-console in token_forwarders (auditrail.forwardsConsoleTokens):
then each call is the signed-in user's whose token it carries (chart
README, "The console").
*/}}
{{- define "auditrail.consoleClientCert" -}}
{{- $tls := .root.Values.global.tls -}}
{{- if and $tls.enabled (or (has "query" $tls.clientCertificates) (has "reporter" $tls.clientCertificates) (has "ingestor" $tls.clientCertificates) (has "indexer" $tls.clientCertificates)) -}}
true
{{- end -}}
{{- end -}}

{{/*
"true" when the component's server takes the console's certificate as a
carrier of its users' tokens ([server.auth] token_forwarders): one the
console calls (query, reporter, ingestor, indexer) that requires client
certificates and checks tokens (token file or Kubernetes tokens). Without
a token source a forwarded token could not be checked, so the console's
calls there stay <release>-console's own.
*/}}
{{- define "auditrail.forwardsConsoleTokens" -}}
{{- $a := .root.Values.global.auth -}}
{{- if and (has .component (list "query" "reporter" "ingestor" "indexer")) (include "auditrail.requiresClientCert" .) (or $a.tokenSecret $a.kubernetes.authenticate) -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the component's server has an identity source (client CA, token file, Kubernetes tokens): access control is on there, and it reads the roles file. */}}
{{- define "auditrail.accessControl" -}}
{{- $a := .root.Values.global.auth -}}
{{- if or (include "auditrail.requiresClientCert" .) $a.tokenSecret $a.kubernetes.authenticate -}}
true
{{- end -}}
{{- end -}}

{{/* The ConfigMap of the roles file: the user's, or the chart's own (which binds the ingestor's identity). */}}
{{- define "auditrail.rolesConfigMap" -}}
{{- .root.Values.global.auth.rolesConfigMap | default (printf "%s-roles" .root.Release.Name) -}}
{{- end -}}

{{/* Whether the component's pod talks to the Kubernetes API for access reviews (TokenReview, SubjectAccessReview). */}}
{{- define "auditrail.kubeAuth" -}}
{{- $k := .root.Values.global.auth.kubernetes -}}
{{- if or $k.authenticate $k.authorize -}}
true
{{- end -}}
{{- end -}}

{{/* With the Kubernetes authenticator or authorizer: the workload's annotation saying why its pod mounts the service account token. */}}
{{- define "auditrail.kubeAuthAnnotations" -}}
{{- if include "auditrail.kubeAuth" . -}}
annotations:
  checkov.io/skip1: CKV_K8S_38=the token is mounted because the server asks the API server to review tokens and permissions (global.auth.kubernetes)
{{- end -}}
{{- end -}}

{{- define "auditrail.tlsVolume" -}}
{{- if .root.Values.global.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "auditrail.tlsSecretName" . }}
    defaultMode: 288  # 0440, in decimal: YAML 1.1 and 1.2 readers agree on it
{{- end }}
{{- if .root.Values.global.auth.tokenSecret }}
- name: auth-tokens
  secret:
    secretName: {{ .root.Values.global.auth.tokenSecret }}
    defaultMode: 288  # 0440, in decimal: YAML 1.1 and 1.2 readers agree on it
{{- end }}
{{- if include "auditrail.accessControl" . }}
- name: auth-roles
  configMap:
    name: {{ include "auditrail.rolesConfigMap" . }}
{{- end }}
{{- if and (eq .component "ingestor") .root.Values.global.auth.clientTokenSecret }}
- name: client-token
  secret:
    secretName: {{ .root.Values.global.auth.clientTokenSecret }}
    defaultMode: 288  # 0440, in decimal: YAML 1.1 and 1.2 readers agree on it
{{- end }}
{{- end -}}

{{/* The mounts of auditrail.tlsVolume; "tlsVolumeName" names the certificate's volume when the pod has another's "tls" (query in the indexer's pod). */}}
{{- define "auditrail.tlsMounts" -}}
{{- if .root.Values.global.tls.enabled }}
- name: {{ .tlsVolumeName | default "tls" }}
  mountPath: /etc/auditrail/tls
  readOnly: true
{{- end }}
{{- if .root.Values.global.auth.tokenSecret }}
- name: auth-tokens
  mountPath: /etc/auditrail/auth
  readOnly: true
{{- end }}
{{- if include "auditrail.accessControl" . }}
- name: auth-roles
  mountPath: /etc/auditrail/authz
  readOnly: true
{{- end }}
{{- /* The ingestor's token toward the indexer ([ingestor.indexer_client] token_file). */}}
{{- if and (eq .component "ingestor") .root.Values.global.auth.clientTokenSecret }}
- name: client-token
  mountPath: /etc/auditrail/client-token
  readOnly: true
{{- end }}
{{- end -}}

{{/* The URL a client uses to reach a component's Service. */}}
{{- define "auditrail.url" -}}
{{- printf "%s://%s:%s" (ternary "https" "http" .root.Values.global.tls.enabled) (include "auditrail.fullname" .) (include "auditrail.grpcPort" .) -}}
{{- end -}}

{{/*
The config file's shared part: data_dir, [server], [log], [store], and
the access-control keys (#17: [server.tls], [server.auth],
insecure_listen), each only when its value is set.
*/}}
{{- define "auditrail.configCommon" -}}
{{- $g := .root.Values.global -}}
{{- if not (or $g.tls.enabled $g.server.insecureListen) }}
{{- fail "global.tls.enabled=false needs global.server.insecureListen=true, the explicit opt-in to plaintext on the pod network: without TLS the servers refuse to listen on the pod's address" }}
{{- end -}}
data_dir = {{ .dataDir | quote }}

[server]
listen = "0.0.0.0:{{ include "auditrail.grpcPort" . }}"
metrics = true
metrics_listen = "0.0.0.0:{{ include "auditrail.metricsPort" . }}"
shutdown_grace_secs = {{ $g.server.shutdownGraceSecs }}
{{- if and $g.server.insecureListen (not $g.tls.enabled) }}
insecure_listen = true
{{- end }}
{{- if $g.tls.enabled }}

[server.tls]
cert = "/etc/auditrail/tls/tls.crt"
key = "/etc/auditrail/tls/tls.key"
{{- if include "auditrail.requiresClientCert" . }}
client_ca = "/etc/auditrail/tls/ca.crt"
{{- end }}
{{- end }}
{{- if or $g.auth.tokenSecret (include "auditrail.accessControl" .) (include "auditrail.kubeAuth" .) }}

[server.auth]
{{- if $g.auth.tokenSecret }}
token_file = "/etc/auditrail/auth/{{ $g.auth.tokenKey }}"
{{- end }}
{{- if include "auditrail.accessControl" . }}
roles_file = "/etc/auditrail/authz/{{ $g.auth.rolesKey }}"
{{- end }}
{{- if $g.auth.kubernetes.authenticate }}
kubernetes_tokens = true
{{- end }}
{{- if $g.auth.kubernetes.authorize }}
kubernetes_authorization = true
{{- end }}
{{- if include "auditrail.forwardsConsoleTokens" . }}
token_forwarders = [{{ include "auditrail.fullname" (dict "root" .root "component" "console") | quote }}]
{{- end }}
{{- if include "auditrail.kubeAuth" . }}
cache_ttl_secs = {{ int $g.auth.kubernetes.cacheTtlSecs }}
{{- end }}
{{- end }}
{{- if has .component (list "query" "provisioner" "reporter") }}
{{- include "auditrail.configAccessLog" . }}
{{- end }}

[log]
level = {{ $g.log.level | quote }}
format = {{ $g.log.format | quote }}
{{- if and .storeUser (eq $g.store.type "elasticsearch") }}
{{- $es := $g.store.elasticsearch }}

[store.elasticsearch]
urls = {{ required "global.store.elasticsearch.urls: at least one URL with global.store.type=elasticsearch" $es.urls | toJson }}
naming = {{ $es.naming | quote }}
ilm = {{ $es.ilm }}
{{- if $es.caSecret }}
ca_cert = "/etc/auditrail/es-ca/ca.crt"
{{- end }}
{{- end }}
{{- end -}}

{{/* The ingestor's side of its calls to the indexer (#17): mTLS and a token, [ingestor.indexer_client]. */}}
{{- define "auditrail.configClient" -}}
{{- $g := .root.Values.global -}}
{{- if or $g.tls.enabled $g.auth.clientTokenSecret }}

[ingestor.indexer_client]
{{- if $g.tls.enabled }}
tls_ca = "/etc/auditrail/tls/ca.crt"
tls_cert = "/etc/auditrail/tls/tls.crt"
tls_key = "/etc/auditrail/tls/tls.key"
{{- end }}
{{- if $g.auth.clientTokenSecret }}
token_file = "/etc/auditrail/client-token/token"
{{- end }}
{{- end }}
{{- end -}}

{{/*
"true" when the release runs the indexer (indexer.enabled). A subchart
sees its own values only, never indexer.enabled: the indexer chart, which
Helm loads only when indexer.enabled, defines this template as "true"
(charts/indexer/templates/_in-release.tpl), and this empty definition
stands for it otherwise. Go templates never replace a definition by an
empty one, so the indexer's wins whichever file is parsed first.
*/}}
{{- define "auditrail.indexerInRelease" -}}{{- end -}}

{{/*
[server.access_log] of the query service, the provisioner and the
reporter (#17): every call of theirs that reads or changes the trail
leaves an access record, which an indexer stores, and none runs in their
process. So they send the records to the release's indexer: query on the
embedded store is a container of the indexer's pod and reaches it on
localhost (a name of the indexer's certificate); the others, and query on
Elasticsearch, reach its Service. With TLS the component's own
certificate (client auth usage) is its client certificate: its identity
<release>-<component> is bound to the built-in role recorder (roles.yaml,
rbac-access.yaml). Without the indexer in the release, recording is off
(enabled = false; the server logs it at WARN).
*/}}
{{- define "auditrail.configAccessLog" -}}
{{- $g := .root.Values.global }}

[server.access_log]
{{- if include "auditrail.indexerInRelease" . }}
{{- $indexer := dict "root" .root "component" "indexer" }}
{{- if and (eq .component "query") (eq $g.store.type "embedded") }}
indexer_url = "{{ ternary "https" "http" $g.tls.enabled }}://localhost:{{ include "auditrail.grpcPort" $indexer }}"
{{- else }}
indexer_url = {{ include "auditrail.url" $indexer | quote }}
{{- end }}
{{- if $g.tls.enabled }}

[server.access_log.client]
tls_ca = "/etc/auditrail/tls/ca.crt"
tls_cert = "/etc/auditrail/tls/tls.crt"
tls_key = "/etc/auditrail/tls/tls.key"
{{- end }}
{{- else }}
enabled = false
{{- end }}
{{- end -}}

{{/* Elasticsearch credentials as environment variables, from a Secret. */}}
{{- define "auditrail.esEnv" -}}
{{- $es := .root.Values.global.store.elasticsearch -}}
{{- if and (eq .root.Values.global.store.type "elasticsearch") $es.auth.existingSecret }}
{{- if eq $es.auth.type "basic" }}
- name: AUDITRAIL_STORE__ELASTICSEARCH__AUTH__BASIC__USERNAME
  valueFrom:
    secretKeyRef: {name: {{ $es.auth.existingSecret }}, key: username}
- name: AUDITRAIL_STORE__ELASTICSEARCH__AUTH__BASIC__PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $es.auth.existingSecret }}, key: password}
{{- else if eq $es.auth.type "apiKey" }}
- name: AUDITRAIL_STORE__ELASTICSEARCH__AUTH__API_KEY
  valueFrom:
    secretKeyRef: {name: {{ $es.auth.existingSecret }}, key: api_key}
{{- else if eq $es.auth.type "bearer" }}
- name: AUDITRAIL_STORE__ELASTICSEARCH__AUTH__BEARER
  valueFrom:
    secretKeyRef: {name: {{ $es.auth.existingSecret }}, key: token}
{{- end }}
{{- end }}
{{- end -}}

{{- define "auditrail.esVolume" -}}
{{- $es := .root.Values.global.store.elasticsearch -}}
{{- if and (eq .root.Values.global.store.type "elasticsearch") $es.caSecret }}
- name: es-ca
  secret:
    secretName: {{ $es.caSecret }}
{{- end }}
{{- end -}}
{{- define "auditrail.esMount" -}}
{{- $es := .root.Values.global.store.elasticsearch -}}
{{- if and (eq .root.Values.global.store.type "elasticsearch") $es.caSecret }}
- name: es-ca
  mountPath: /etc/auditrail/es-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/*
One auditrail container: `auditrail run --service <component> --config
/etc/auditrail/auditrail.toml`, its ports, probes and posture. Extra
"mounts" and "env" (YAML lists as strings) are appended. With "httpPort"
(the console) a third port, http, which the probes ask (auditrail.httpProbes).
*/}}
{{- define "auditrail.container" -}}
- name: {{ .component }}
  image: {{ include "auditrail.image" . }}
  imagePullPolicy: {{ .root.Values.global.image.pullPolicy }}
  args: ["run", "--service", {{ .component | quote }}, "--config", "/etc/auditrail/{{ .component }}/auditrail.toml"]
  ports:
    - name: grpc-{{ .component | trunc 10 }}
      containerPort: {{ include "auditrail.grpcPort" . }}
      protocol: TCP
    - name: metrics-{{ .component | trunc 7 }}
      containerPort: {{ include "auditrail.metricsPort" . }}
      protocol: TCP
    {{- with .httpPort }}
    - name: http
      containerPort: {{ . }}
      protocol: TCP
    {{- end }}
  {{- if .httpPort }}
  {{- include "auditrail.httpProbes" . | nindent 2 }}
  {{- else }}
  {{- include "auditrail.probes" . | nindent 2 }}
  {{- end }}
  securityContext:
    {{- include "auditrail.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  env:
    - name: TMPDIR
      value: /tmp
    {{- include "auditrail.esEnv" . | nindent 4 }}
    {{- with .env }}
    {{- . | nindent 4 }}
    {{- end }}
  volumeMounts:
    - name: config-{{ .component }}
      mountPath: /etc/auditrail/{{ .component }}
      readOnly: true
    - name: tmp
      mountPath: /tmp
    {{- include "auditrail.tlsMounts" . | nindent 4 }}
    {{- include "auditrail.esMount" . | nindent 4 }}
    {{- with .mounts }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The volumes every auditrail pod has: its config, /tmp, TLS and auth. */}}
{{- define "auditrail.commonVolumes" -}}
- name: config-{{ .component }}
  configMap:
    name: {{ include "auditrail.fullname" . }}-config
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- include "auditrail.tlsVolume" . }}
{{- include "auditrail.esVolume" . }}
{{- end -}}

{{- define "auditrail.podSpecCommon" -}}
serviceAccountName: {{ include "auditrail.fullname" . }}
automountServiceAccountToken: {{ if or .automountToken (include "auditrail.kubeAuth" .) }}true{{ else }}false{{ end }}
securityContext:
  {{- include "auditrail.podSecurityContext" . | nindent 2 }}
{{- with .root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (hasKey . "nodeSelector" | ternary .nodeSelector .root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (hasKey . "tolerations" | ternary .tolerations .root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "auditrail.topologySpread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "auditrail.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "auditrail.selectorLabels" . | nindent 8 }}
{{- end -}}

{{- define "auditrail.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "auditrail.fullname" . }}
  labels:
    {{- include "auditrail.labels" . | nindent 4 }}
  {{- with .root.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}

{{/* The Service of a component: its gRPC port, and the metrics port. */}}
{{- define "auditrail.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "auditrail.fullname" . }}
  labels:
    {{- include "auditrail.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- if .selectComponent }}
    {{- include "auditrail.selectorLabels" (dict "root" .root "component" .selectComponent) | nindent 4 }}
    {{- else }}
    {{- include "auditrail.selectorLabels" . | nindent 4 }}
    {{- end }}
  ports:
    - name: grpc
      port: {{ include "auditrail.grpcPort" . }}
      targetPort: {{ include "auditrail.grpcPort" . }}
      protocol: TCP
      appProtocol: grpc
    - name: metrics
      port: {{ include "auditrail.metricsPort" . }}
      targetPort: {{ include "auditrail.metricsPort" . }}
      protocol: TCP
{{- end -}}

{{- define "auditrail.serviceMonitor" -}}
{{- if .root.Values.global.metrics.serviceMonitor.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "auditrail.fullname" . }}
  labels:
    {{- include "auditrail.labels" . | nindent 4 }}
    {{- with .root.Values.global.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "auditrail.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ .root.Values.global.metrics.serviceMonitor.interval }}
{{- end }}
{{- end -}}

{{- define "auditrail.pdb" -}}
{{- if gt (int .replicas) 1 }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "auditrail.fullname" . }}
  labels:
    {{- include "auditrail.labels" . | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "auditrail.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A ConfigMap holding a component's auditrail.toml (given as .config). */}}
{{- define "auditrail.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "auditrail.fullname" . }}-config
  labels:
    {{- include "auditrail.labels" . | nindent 4 }}
data:
  auditrail.toml: |
    {{- .config | nindent 4 }}
{{- end -}}

{{/* cert-manager Certificate of a component, signed by the release's issuer. */}}
{{- define "auditrail.certificate" -}}
{{- $tls := .root.Values.global.tls -}}
{{- if and $tls.enabled $tls.certManager.enabled }}
{{- $name := include "auditrail.fullname" . }}
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ $name }}
  labels:
    {{- include "auditrail.labels" . | nindent 4 }}
spec:
  secretName: {{ $name }}-tls
  duration: {{ $tls.certManager.duration }}
  renewBefore: {{ $tls.certManager.renewBefore }}
  commonName: {{ $name }}
  dnsNames: {{ include "auditrail.dnsNames" . }}
  usages: ["server auth", "client auth", "digital signature", "key encipherment"]
  privateKey:
    algorithm: ECDSA
    size: 256
    rotationPolicy: Always
  issuerRef:
    {{- if $tls.certManager.issuerRef.name }}
    {{- toYaml $tls.certManager.issuerRef | nindent 4 }}
    {{- else }}
    name: {{ .root.Release.Name }}-ca
    kind: Issuer
    group: cert-manager.io
    {{- end }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy pieces: DNS egress, and metrics ingress from the named namespaces. */}}
{{- define "auditrail.egressDNS" -}}
- to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}

{{- define "auditrail.ingressMetrics" -}}
{{- with .root.Values.global.networkPolicy.metricsNamespaces }}
- from:
    {{- range . }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . }}
    {{- end }}
  ports:
    - {protocol: TCP, port: {{ include "auditrail.metricsPort" $ }}}
{{- end }}
{{- end -}}

{{/* Clients of a component's gRPC port: the named namespaces, and pods of the release's namespace labelled auditrail.io/client=true (the helm test pods are). */}}
{{- define "auditrail.ingressClients" -}}
- from:
    - podSelector:
        matchLabels:
          auditrail.io/client: "true"
    {{- range .root.Values.global.networkPolicy.clientNamespaces }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . }}
    {{- end }}
    {{- range .extraFrom }}
    - podSelector:
        matchLabels:
          {{- include "auditrail.selectorLabels" (dict "root" $.root "component" .) | nindent 10 }}
    {{- end }}
  ports:
    - {protocol: TCP, port: {{ include "auditrail.grpcPort" . }}}
{{- end -}}

{{- define "auditrail.egressAPIServer" -}}
{{- $api := .root.Values.global.networkPolicy.apiServer }}
- to:
    {{- range $api.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range $api.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- end -}}

{{- define "auditrail.egressElasticsearch" -}}
{{- $np := .root.Values.global.networkPolicy }}
{{- if eq .root.Values.global.store.type "elasticsearch" }}
- to:
    {{- range $np.elasticsearch.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range $np.elasticsearch.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- end }}
{{- end -}}

{{/* egress to another component's gRPC port. */}}
{{- define "auditrail.egressTo" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "auditrail.selectorLabels" . | nindent 10 }}
  ports:
    - {protocol: TCP, port: {{ include "auditrail.grpcPort" . }}}
{{- end -}}
