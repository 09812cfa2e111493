// SPDX-License-Identifier: LGPL-2.1-or-later
/* XML to json-c, for the answers of AWS's APIs (EC2, Route 53): one document of elements and
 * text. An element is a string when it holds text only (or nothing), an array when every element
 * it holds is an <item> (EC2's lists) or is named as it is without its last 's' (<Things><Thing>,
 * Route 53's), and an object of its elements otherwise (a name given twice: the last).
 * Attributes, comments, processing instructions and the XML declaration are skipped; CDATA is
 * text; the five named entities and character references are decoded. A DOCTYPE is refused, so
 * there are no other entities to expand. *ret is { "RootName": value }. */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

#define XML_MAX_DEPTH 32

int xml_to_json(const char *data, size_t size, json_object **ret, char **ret_error);
