// SPDX-License-Identifier: LGPL-2.1-or-later
/* Asking polkit whether the sender of a method call may perform an action. */
#pragma once

#include "manager.h"

/* 1: authorized, go ahead. 0: the question is out; the call will be dispatched again when
 * polkit answers, so return 1 from the method handler. <0: refused, error is set. */
int polkit_verify(Manager *m, sd_bus_message *call, const char *action, sd_bus_error *error);
void polkit_queries_free(Manager *m);
