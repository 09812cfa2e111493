// SPDX-License-Identifier: LGPL-2.1-or-later
/* YAML (one document: mappings, sequences, scalars; no anchors) to json-c, with libyaml: how
 * the operator reads a kubeconfig. Plain scalars true/false/null and integers keep their type;
 * everything else is a string. */
#pragma once

#include <json-c/json.h>

#include "macro.h"

#define YAML_MAX_DEPTH 64

int yaml_to_json(const char *data, size_t size, json_object **ret, char **ret_error);
