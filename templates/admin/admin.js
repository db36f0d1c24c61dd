// The console works without this file. It only makes things live where a
// wait would otherwise be blind (import and send progress).
"use strict";
