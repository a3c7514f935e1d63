// What a call throws, for tests that check an error's text.
#pragma once

#include <functional>
#include <string>

#include "core/base/error.h"

namespace pieces::test_support {

/// The message of the pieces::error `fn` throws; "" when it throws none.
inline std::string message_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const error& e) {
        return e.what();
    }
    return "";
}

}  // namespace pieces::test_support
