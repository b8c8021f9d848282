#include "events/job/job_decider.hpp"
