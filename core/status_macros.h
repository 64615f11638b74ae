#ifndef EMBEDSERVE_CORE_STATUS_MACROS_H_
#define EMBEDSERVE_CORE_STATUS_MACROS_H_
// Moved to base/status_macros.h (the base library every layer links); this
// forwarder goes once the last includes are updated.
#include "base/status_macros.h"
#endif  // EMBEDSERVE_CORE_STATUS_MACROS_H_
