// Libraries loaded on first use (dlopen), so that commands which never need them do not pay
// for loading them at start-up.
#pragma once

#include <dlfcn.h>

#include <string>

#include "core/base/error.h"

namespace pieces {

/// dlopen(name) for the whole process; throws "<why>: <dlerror>" when it cannot.
inline void* open_library(const char* name, const std::string& why) {
    void* lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) throw error(why + ": " + ::dlerror());
    return lib;
}

/// Points `slot` at the library's function `name`; throws "<library>: no symbol <name>".
template <typename Fn>
void resolve_symbol(void* lib, Fn& slot, const char* name, const char* library) {
    void* sym = ::dlsym(lib, name);
    if (!sym) throw error(std::string(library) + ": no symbol " + name);
    slot = reinterpret_cast<Fn>(sym);
}

}  // namespace pieces
