#!/usr/bin/env bash
# Writes the chart's CRD template (charts/xero-operator/templates/crd.yaml) from
# crds/xerodatasets.yaml: the same object, wrapped in `crds.install`, with the chart's labels and
# `helm.sh/resource-policy: keep`. tests/chart.rs fails when the two differ.
#
#   ./hack/chart-crd.sh           rewrite the template
#   ./hack/chart-crd.sh --check   exit 1 when the template is out of date
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source_crd="$root/crds/xerodatasets.yaml"
template="$root/charts/xero-operator/templates/crd.yaml"

if grep -q '{{' "$source_crd"; then
  echo "chart-crd: $source_crd contains '{{', which Helm would read as a template action" >&2
  exit 1
fi

render() {
  echo '{{- if .Values.crds.install }}'
  echo '# Copied from crds/xerodatasets.yaml by hack/chart-crd.sh; do not edit.'
  # Drop the source's comment header; add the chart's metadata after the name.
  grep -v '^#' "$source_crd" | awk '
    { print }
    /^metadata:$/ { in_metadata = 1; next }
    in_metadata && /^  name:/ {
      print "  labels:"
      print "    {{- include \"xero-operator.labels\" . | nindent 4 }}"
      print "  annotations:"
      print "    # Uninstalling the chart must not delete every XeroDataset with the CRD."
      print "    helm.sh/resource-policy: keep"
      in_metadata = 0
    }
  '
  echo '{{- end }}'
}

if [ "${1:-}" = "--check" ]; then
  if ! diff -u "$template" <(render) >&2; then
    echo "chart-crd: $template is out of date; run ./hack/chart-crd.sh" >&2
    exit 1
  fi
  exit 0
fi
render >"$template"
