{{/*
Tells the other services' charts that the release runs the indexer: Helm
loads this chart only with indexer.enabled, and a sibling chart cannot
read that value. The empty default is auditrail-lib's
"auditrail.indexerInRelease"; the query service, provisioner and reporter
send their access records here only when this says "true".
*/}}
{{- define "auditrail.indexerInRelease" -}}true{{- end -}}
