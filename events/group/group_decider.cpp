#include "events/group/group_decider.hpp"
