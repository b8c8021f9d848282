#include "events/connection/connection_decider.hpp"
