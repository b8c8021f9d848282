#include "events/container/container_decider.hpp"
